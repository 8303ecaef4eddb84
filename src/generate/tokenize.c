// Tokenize: text into tokens through llama.cpp, checked first where llama.cpp would throw.
//
// llama.cpp (src/llama-vocab.cpp of the pinned v0.5.0, llama_vocab::impl::tokenize) turns
// text into SentencePiece ("llama") tokens in three moves, and the last one can throw:
//  1. tokenizer_st_partition: the text is cut at each special token's text (control,
//     user-defined and unknown tokens, longest first; LSTRIP/RSTRIP tokens eat the spaces
//     beside them).
//  2. each piece of text between them gets a space in front when the vocabulary adds one and
//     the piece starts the text or follows a special token; spaces become U+2581 "▁"; the piece
//     is cut into UTF-8 characters, and neighbours whose concatenation is a token merge, the
//     best-scoring pair first, the leftmost of equals (llm_tokenizer_spm_session).
//  3. resegment: a merged symbol is a token by construction; a character left alone that is
//     no token is spelled in byte tokens by byte_to_token(): "<0xXX>", else the byte itself as
//     a one-byte token, else token_to_id.at() throws std::out_of_range. The exception crosses
//     llama_tokenize's C interface and ends the process (terminate, ggml's backtrace, abort).
// A text is therefore safe when every byte has a byte token (any real SentencePiece model);
// otherwise this file replays moves 1 and 2 exactly and looks at the characters left alone.
// The other tokenizers never throw on text: BPE skips a byte it has no token for, WPM, UGM and
// RWKV use the unknown token, and PLaMo-2 refuses at load a vocabulary without all byte tokens.
#include "core/internal.h"
#include "models/sorter.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ESCAPED_SPACE "\xe2\x96\x81" // U+2581, what SentencePiece writes for a space

struct llt_tokenizer {
    const struct llama_vocab * vocab; // the model's: lives as long as it
    bool          checked;       // SentencePiece without every byte token: texts are checked
    bool          space_prefix;  // tokenizer.ggml.add_space_prefix
    bool          sorter;        // the demo model's vocabulary
    int32_t *     slots;         // text -> id, open addressing; -1 empty
    uint32_t      mask;          // slots - 1, a power of two minus one
    llama_token * special;       // special tokens in the order the partition tries them
    int32_t       n_special;
};

// ---- the vocabulary's texts --------------------------------------------------------------

static uint32_t hash_bytes(const char * s, size_t n) {
    uint32_t h = 2166136261u; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t) s[i]) * 16777619u;
    return h;
}

// the token whose text is the n bytes at s, -1 if none (llama.cpp refuses a vocabulary with
// two equal texts at load)
static llama_token find_text(const struct llt_tokenizer * tk, const char * s, size_t n) {
    for (uint32_t i = hash_bytes(s, n) & tk->mask;; i = (i + 1) & tk->mask) {
        const llama_token id = tk->slots[i];
        if (id < 0) return -1;
        const char * t = llama_vocab_get_text(tk->vocab, id);
        if (strncmp(t, s, n) == 0 && t[n] == '\0') return id;
    }
}

static int build_lookup(struct llt_tokenizer * tk, int32_t n_vocab) {
    uint32_t size = 2;
    while (size < 2u * (uint32_t) n_vocab) size *= 2;
    tk->slots = malloc(size * sizeof(int32_t));
    if (!tk->slots) return llt_set_error(LLT_ENOMEM, "out of memory");
    memset(tk->slots, 0xff, size * sizeof(int32_t));
    tk->mask = size - 1;
    for (llama_token id = 0; id < n_vocab; id++) {
        const char * t = llama_vocab_get_text(tk->vocab, id);
        uint32_t i = hash_bytes(t, strlen(t)) & tk->mask;
        while (tk->slots[i] >= 0 && strcmp(llama_vocab_get_text(tk->vocab, tk->slots[i]), t) != 0) i = (i + 1) & tk->mask;
        tk->slots[i] = id;
    }
    return LLT_OK;
}

// whether byte_to_token() finds a token for byte b
static bool has_byte_token(const struct llt_tokenizer * tk, uint8_t b) {
    char hex[8];
    snprintf(hex, sizeof(hex), "<0x%02X>", b);
    const char one = (char) b;
    return find_text(tk, hex, strlen(hex)) >= 0 || (b != 0 && find_text(tk, &one, 1) >= 0);
}

struct special {
    size_t      len; // of its text
    llama_token id;
};

// longest text first; llama.cpp's std::sort leaves equal lengths in an unspecified order,
// which matters only for special texts that overlap: ids in order here
static int special_cmp(const void * a, const void * b) {
    const struct special * x = a, * y = b;
    return x->len != y->len ? (x->len > y->len ? -1 : 1) : (x->id > y->id) - (x->id < y->id);
}

// the special tokens, in the order tokenizer_st_partition tries them
static int find_special(struct llt_tokenizer * tk, int32_t n_vocab) {
    const int kinds = LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED | LLAMA_TOKEN_ATTR_UNKNOWN;
    struct special * sp = malloc((size_t) n_vocab * sizeof(*sp));
    tk->special = malloc((size_t) n_vocab * sizeof(llama_token));
    if (!sp || !tk->special) { free(sp); return llt_set_error(LLT_ENOMEM, "out of memory"); }
    int32_t n = 0;
    for (llama_token id = 0; id < n_vocab; id++) {
        if (llama_vocab_get_attr(tk->vocab, id) & kinds) sp[n++] = (struct special) { strlen(llama_vocab_get_text(tk->vocab, id)), id };
    }
    qsort(sp, (size_t) n, sizeof(*sp), special_cmp);
    for (int32_t i = 0; i < n; i++) tk->special[i] = sp[i].id;
    tk->n_special = n;
    free(sp);
    return LLT_OK;
}

// whether every byte but 0 (a C string has none) has a byte token: "<0xXX>" or the byte
// itself, found by one pass over the texts without building the lookup
static bool all_byte_tokens(const struct llama_vocab * vocab, int32_t n_vocab) {
    static const char hex[] = "0123456789ABCDEF"; // byte_to_token's spelling
    bool seen[256] = { false };
    int n_seen = 0;
    for (llama_token id = 0; id < n_vocab && n_seen < 255; id++) {
        const char * t = llama_vocab_get_text(vocab, id);
        int b = -1;
        if (t[0] != '\0' && t[1] == '\0') b = (uint8_t) t[0];
        if (t[0] == '<' && t[1] == '0' && t[2] == 'x' && t[3] && t[4] && t[5] == '>' && t[6] == '\0') {
            const char * hi = strchr(hex, t[3]), * lo = strchr(hex, t[4]);
            if (hi && lo) b = (int) ((hi - hex) * 16 + (lo - hex));
        }
        if (b > 0 && !seen[b]) { seen[b] = true; n_seen++; }
    }
    return n_seen == 255;
}

int llt_tokenizer_init(const struct llama_model * model, struct llt_tokenizer ** out) {
    *out = NULL;
    struct llt_tokenizer * tk = calloc(1, sizeof(*tk));
    if (!tk) return llt_set_error(LLT_ENOMEM, "out of memory");
    tk->vocab = llama_model_get_vocab(model);
    const int32_t n_vocab = llama_vocab_n_tokens(tk->vocab);
    tk->checked = llama_vocab_type(tk->vocab) == LLAMA_VOCAB_TYPE_SPM && !all_byte_tokens(tk->vocab, n_vocab);
    int rc = LLT_OK;
    if (tk->checked) {
        char v[8] = "";
        // llama.cpp adds the space unless the file says otherwise (llama_vocab::impl::load)
        tk->space_prefix = llama_model_meta_val_str(model, "tokenizer.ggml.add_space_prefix", v, sizeof(v)) < 0 ||
                           strcmp(v, "true") == 0;
        tk->sorter = llt_sort_vocab_is(tk->vocab);
        if ((rc = build_lookup(tk, n_vocab)) == LLT_OK) rc = find_special(tk, n_vocab);
    }
    if (rc != LLT_OK) { llt_tokenizer_free(tk); return rc; }
    *out = tk;
    return LLT_OK;
}

void llt_tokenizer_free(struct llt_tokenizer * tk) {
    if (!tk) return;
    free(tk->slots);
    free(tk->special);
    free(tk);
}

// ---- move 1: the partition at special tokens ---------------------------------------------

// a piece of the text: raw text [off, off + len), or a special token
struct fragment {
    size_t      off, len;
    llama_token token; // -1: raw text
};

struct fragments {
    struct fragment * v;
    int32_t n, cap;
};

static bool push(struct fragments * f, size_t off, size_t len, llama_token token) {
    if (f->n == f->cap && !llt_grow((void **) &f->v, &f->cap, f->n + 1, sizeof(*f->v))) return false;
    f->v[f->n++] = (struct fragment) { off, len, token };
    return true;
}

// the first occurrence of w (wn > 0 bytes) in h[0, hn), NULL if none
static const char * find_bytes(const char * h, size_t hn, const char * w, size_t wn) {
    for (size_t i = 0; wn > 0 && i + wn <= hn; i++) {
        if (h[i] == w[0] && memcmp(h + i, w, wn) == 0) return h + i;
    }
    return NULL;
}

// tokenizer_st_partition: each special token in turn cuts every raw fragment at each of its
// occurrences; *out: caller frees out->v with free()
static int partition(const struct llt_tokenizer * tk, const char * text, struct fragments * out) {
    struct fragments cur = { 0 }, next = { 0 };
    int rc = LLT_OK;
    const size_t n = strlen(text);
    if (n > 0 && !push(&cur, 0, n, -1)) goto oom;
    for (int32_t s = 0; s < tk->n_special; s++) {
        const llama_token id = tk->special[s];
        const char * word = llama_vocab_get_text(tk->vocab, id);
        const size_t wlen = strlen(word);
        const int attr = llama_vocab_get_attr(tk->vocab, id);
        next.n = 0;
        for (int32_t i = 0; i < cur.n; i++) {
            struct fragment f = cur.v[i];
            if (f.token >= 0) { if (!push(&next, f.off, f.len, f.token)) goto oom; continue; }
            while (f.len > 0) {
                const char * m = find_bytes(text + f.off, f.len, word, wlen);
                if (!m) { if (!push(&next, f.off, f.len, -1)) goto oom; break; }
                const size_t at = (size_t) (m - text);
                size_t left = at - f.off;
                if (attr & LLAMA_TOKEN_ATTR_LSTRIP) {
                    while (left > 0 && isspace((unsigned char) text[f.off + left - 1])) left--;
                }
                if (left > 0 && !push(&next, f.off, left, -1)) goto oom;
                if (!push(&next, 0, 0, id)) goto oom;
                size_t roff = at + wlen, rlen = f.off + f.len - roff;
                if (attr & LLAMA_TOKEN_ATTR_RSTRIP) {
                    while (rlen > 0 && isspace((unsigned char) text[roff])) { roff++; rlen--; }
                }
                f.off = roff;
                f.len = rlen;
            }
        }
        struct fragments t = cur; cur = next; next = t;
    }
    *out = cur;
    free(next.v);
    return rc;
oom:
    free(cur.v);
    free(next.v);
    return llt_set_error(LLT_ENOMEM, "out of memory");
}

// ---- move 2: SentencePiece's merges --------------------------------------------------------

struct symbol {
    size_t  off, n;     // its bytes in the escaped piece
    int32_t prev, next; // neighbours left, -1 at the ends
};

struct bigram {
    int32_t left, right;
    float   score;
    size_t  size;
};

// the pair llm_bigram_spm::comparator puts on top: the best score, then the leftmost
static bool before(const struct bigram * a, const struct bigram * b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

struct heap {
    struct bigram * v;
    int32_t n, cap;
};

static bool heap_push(struct heap * h, struct bigram b) {
    if (h->n == h->cap && !llt_grow((void **) &h->v, &h->cap, h->n + 1, sizeof(*h->v))) return false;
    int32_t i = h->n++;
    while (i > 0 && before(&b, &h->v[(i - 1) / 2])) { h->v[i] = h->v[(i - 1) / 2]; i = (i - 1) / 2; }
    h->v[i] = b;
    return true;
}

static struct bigram heap_pop(struct heap * h) {
    const struct bigram top = h->v[0], last = h->v[--h->n];
    int32_t i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c])) c++;
        if (!before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = last;
    return top;
}

// try_add_bigram: the pair is a candidate when its concatenation is a token
static bool try_pair(const struct llt_tokenizer * tk, const char * piece, const struct symbol * sym,
                     int32_t left, int32_t right, struct heap * h) {
    if (left < 0 || right < 0) return true;
    const size_t size = sym[left].n + sym[right].n;
    const llama_token id = find_text(tk, piece + sym[left].off, size);
    if (id < 0) return true;
    return heap_push(h, (struct bigram) { left, right, llama_vocab_get_score(tk->vocab, id), size });
}

// The character to name: the first that cannot be encoded and is not a space, else the first
// space (a space fails only beside a character that cannot join it: that one is the news).
struct culprit {
    bool    found, space;
    uint8_t bytes[4];
    size_t  n;
};

static void blame(struct culprit * c, const char * s, size_t n, bool space) {
    if (c->found && (!c->space || space)) return;
    c->found = true;
    c->space = space;
    c->n = n < sizeof(c->bytes) ? n : sizeof(c->bytes);
    memset(c->bytes, 0, sizeof(c->bytes));
    memcpy(c->bytes, s, c->n);
}

// One raw fragment as llm_tokenizer_spm_session sees it: escaped, cut into characters by
// their first byte, merged; then each symbol left is looked up as resegment() would.
static int check_piece(const struct llt_tokenizer * tk, const char * text, size_t len, bool prefix, struct culprit * c) {
    static const uint8_t utf8_len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 }; // unicode_len_utf8
    const size_t cap = 3 * (len + 1);
    char * piece = malloc(cap);
    bool * space = malloc(cap);         // the byte starts an escaped space
    struct symbol * sym = malloc(cap * sizeof(*sym));
    struct heap h = { 0 };
    int rc = LLT_OK;
    if (!piece || !space || !sym) { rc = llt_set_error(LLT_ENOMEM, "out of memory"); goto done; }

    // llama_escape_whitespace on " " + text or text
    size_t pn = 0;
    for (size_t i = 0; i < len + prefix; i++) {
        const char ch = prefix ? (i == 0 ? ' ' : text[i - 1]) : text[i];
        if (ch == ' ') {
            memcpy(piece + pn, ESCAPED_SPACE, 3);
            memset(space + pn, 0, 3);
            space[pn] = true;
            pn += 3;
        } else {
            space[pn] = false;
            piece[pn++] = ch;
        }
    }
    int32_t n_sym = 0;
    for (size_t off = 0; off < pn; n_sym++) {
        size_t n = utf8_len[(uint8_t) piece[off] >> 4];
        if (n > pn - off) n = pn - off;
        sym[n_sym] = (struct symbol) { off, n, n_sym - 1, off + n == pn ? -1 : n_sym + 1 };
        off += n;
    }

    for (int32_t i = 1; i < n_sym; i++) {
        if (!try_pair(tk, piece, sym, i - 1, i, &h)) goto oom;
    }
    while (h.n > 0) {
        const struct bigram b = heap_pop(&h);
        struct symbol * l = &sym[b.left], * r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; // one of them merged since
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        if (!try_pair(tk, piece, sym, l->prev, b.left, &h) || !try_pair(tk, piece, sym, b.left, l->next, &h)) goto oom;
    }

    // resegment: a symbol that is no token is spelled byte by byte (a merged one always is a token)
    for (int32_t i = n_sym > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
        const char * s = piece + sym[i].off;
        if (find_text(tk, s, sym[i].n) >= 0) continue;
        for (size_t k = 0; k < sym[i].n; k++) {
            if (!has_byte_token(tk, (uint8_t) s[k])) { blame(c, s, sym[i].n, space[sym[i].off]); break; }
        }
    }
    goto done;
oom:
    rc = llt_set_error(LLT_ENOMEM, "out of memory");
done:
    free(piece);
    free(space);
    free(sym);
    free(h.v);
    return rc;
}

// ---- the check and the tokens ------------------------------------------------------------

// the culprit for a message: "'z' (U+007A)", "a space (U+0020)", "the byte 0xFF (not UTF-8)"
static void describe(const struct culprit * c, char * buf, size_t size) {
    if (c->space) { snprintf(buf, size, "a space (U+0020)"); return; }
    const int n = llt_utf8_len(c->bytes);
    if (n <= 0 || (size_t) n != c->n) { snprintf(buf, size, "the byte 0x%02X (not UTF-8)", c->bytes[0]); return; }
    static const uint8_t lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
    uint32_t cp = c->bytes[0] & lead_mask[n];
    for (int k = 1; k < n; k++) cp = (cp << 6) | (c->bytes[k] & 0x3f);
    if (cp < 0x20 || cp == 0x7f) snprintf(buf, size, "the control character U+%04X", cp); // kept off the one line
    else snprintf(buf, size, "'%.*s' (U+%04X)", n, (const char *) c->bytes, cp);
}

// LLT_OK when llama_tokenize can take text; else LLT_EINVAL naming the character it would throw on
static int check_text(const struct llt_tokenizer * tk, const char * text) {
    struct fragments f = { 0 };
    struct culprit c = { 0 };
    int rc = partition(tk, text, &f);
    bool prev_special = true; // the first piece gets the space too
    for (int32_t i = 0; i < f.n && rc == LLT_OK; i++) {
        if (f.v[i].token >= 0) { prev_special = true; continue; }
        rc = check_piece(tk, text + f.v[i].off, f.v[i].len, tk->space_prefix && prev_special, &c);
        prev_special = false;
    }
    free(f.v);
    if (rc != LLT_OK || !c.found) return rc;
    char what[64];
    describe(&c, what, sizeof(what));
    if (tk->sorter) {
        return llt_set_error(LLT_EINVAL, "the demo model 'sorter' knows only 'sort:', the letters a\xe2\x80\x93h and '=', "
                             "one space apart: it cannot encode %s; to trace any text give -m MODEL, or make a model "
                             "with a full 32,000-token vocabulary: 'lltrace mkmodel tiny', then -m tiny-F32.gguf", what);
    }
    return llt_set_error(LLT_EINVAL, "the model's vocabulary cannot encode %s: no token holds it and it has no "
                         "byte tokens to spell it", what);
}

int llt_tokenize(const struct llt_tokenizer * tk, const char * text, bool add_special,
                 llama_token ** tokens, int32_t * n_tokens) {
    *tokens = NULL;
    *n_tokens = 0;
    if (tk->checked) {
        int rc = check_text(tk, text);
        if (rc != LLT_OK) return rc;
    }
    const size_t len = strlen(text);
    if (len > INT32_MAX) return llt_set_error(LLT_EINVAL, "the text is too long to tokenize (%zu bytes)", len);
    // the count first (a negative return: that many are needed), then the tokens
    const int32_t need = llama_tokenize(tk->vocab, text, (int32_t) len, NULL, 0, add_special, true);
    const int32_t n = need == INT32_MIN ? -1 : -need;
    llama_token * t = n >= 0 ? malloc(((size_t) n + 1) * sizeof(llama_token)) : NULL;
    if (n >= 0 && !t) return llt_set_error(LLT_ENOMEM, "out of memory");
    if (n < 0 || (n > 0 && llama_tokenize(tk->vocab, text, (int32_t) len, t, n, add_special, true) != n)) {
        free(t);
        return llt_set_error(LLT_ELLAMA, "llama.cpp could not tokenize the text (%zu bytes)", len);
    }
    *tokens = t;
    *n_tokens = n;
    return LLT_OK;
}

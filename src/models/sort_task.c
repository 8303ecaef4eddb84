// The sorter's task and vocabulary: the examples it is trained on and the tokenizer that
// llama.cpp loads with it.
//
// The vocabulary is a SentencePiece ("llama") one of a few pieces, so llama.cpp tokenizes
// "sort: d a c b =" one token per word: its tokenizer starts from single characters and merges
// neighbours whose concatenation is a piece, so a long piece is reachable only through the
// chain of its prefixes ("▁s", "▁so", "▁sor", "▁sort", "▁sort:").
#include "models/prng.h"
#include "models/sorter.h"

#include "gguf.h"
#include "llama.h"

#include <stdio.h>
#include <string.h>

// ---- examples ----------------------------------------------------------------------------

int llt_sort_example(uint64_t * rng, int32_t * tokens, int * n_prompt) {
    const int n = SORT_MIN_LEN + (int) (llt_splitmix64(rng) % (SORT_MAX_LEN - SORT_MIN_LEN + 1));
    // n distinct letters in random order: the first n of a Fisher-Yates shuffle
    int letters[SORT_N_LETTERS];
    for (int i = 0; i < SORT_N_LETTERS; i++) letters[i] = i;
    for (int i = 0; i < n; i++) {
        int j = i + (int) (llt_splitmix64(rng) % (uint64_t) (SORT_N_LETTERS - i));
        int t = letters[i]; letters[i] = letters[j]; letters[j] = t;
    }
    bool present[SORT_N_LETTERS] = { false };
    int k = 0;
    tokens[k++] = SORT_TOK_BOS;
    tokens[k++] = SORT_TOK_SORT;
    for (int i = 0; i < n; i++) {
        tokens[k++] = SORT_TOK_A + letters[i];
        present[letters[i]] = true;
    }
    tokens[k++] = SORT_TOK_EQ;
    *n_prompt = k;
    for (int i = 0; i < SORT_N_LETTERS; i++) {
        if (present[i]) tokens[k++] = SORT_TOK_A + i;
    }
    tokens[k++] = SORT_TOK_EOS;
    return k;
}

// ---- vocabulary --------------------------------------------------------------------------

// the text of token id (< SORT_N_VOCAB) into buf (8 bytes)
static const char * sort_token_text(int id, char buf[8]) {
    static const char * fixed[SORT_TOK_A] = {
        "<unk>", "<s>", "</s>", "\xe2\x96\x81s", "\xe2\x96\x81so", "\xe2\x96\x81sor", "\xe2\x96\x81sort",
        "\xe2\x96\x81sort:", "\xe2\x96\x81=",
    };
    if (id < SORT_TOK_A) return fixed[id];
    snprintf(buf, 8, "\xe2\x96\x81%c", 'a' + id - SORT_TOK_A);
    return buf;
}

bool llt_sort_vocab_is(const struct llama_vocab * vocab) {
    if (llama_vocab_n_tokens(vocab) != SORT_N_VOCAB) return false;
    char buf[8];
    for (int i = 0; i < SORT_N_VOCAB; i++) {
        if (strcmp(llama_vocab_get_text(vocab, i), sort_token_text(i, buf)) != 0) return false;
    }
    return true;
}

void llt_sort_vocab(struct gguf_context * meta) {
    char letters[SORT_N_VOCAB][8];
    const char * tokens[SORT_N_VOCAB];
    float scores[SORT_N_VOCAB];
    int32_t types[SORT_N_VOCAB];
    for (int i = 0; i < SORT_N_VOCAB; i++) {
        tokens[i] = sort_token_text(i, letters[i]);
        scores[i] = 0.0f;
        types[i] = i == SORT_TOK_UNK ? 2 : i <= SORT_TOK_EOS ? 3 : 1; // unknown, control, normal
    }
    gguf_set_val_str(meta, "tokenizer.ggml.model", "llama");
    gguf_set_val_str(meta, "tokenizer.ggml.pre", "default");
    gguf_set_arr_str(meta, "tokenizer.ggml.tokens", tokens, SORT_N_VOCAB);
    gguf_set_arr_data(meta, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, SORT_N_VOCAB);
    gguf_set_arr_data(meta, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, SORT_N_VOCAB);
    gguf_set_val_u32(meta, "tokenizer.ggml.unknown_token_id", SORT_TOK_UNK);
    gguf_set_val_u32(meta, "tokenizer.ggml.bos_token_id", SORT_TOK_BOS);
    gguf_set_val_u32(meta, "tokenizer.ggml.eos_token_id", SORT_TOK_EOS);
    gguf_set_val_bool(meta, "tokenizer.ggml.add_bos_token", true);
    gguf_set_val_bool(meta, "tokenizer.ggml.add_eos_token", false);
}

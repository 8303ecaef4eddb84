// Built-in models: deterministic checkpoints of several architectures made through llama.cpp's
// public API.
//
// No model can be downloaded where lltrace is tested, so it makes its own: the tokenizer of
// the architecture's family from a vocab GGUF shipped with llama.cpp, hyperparameters of a
// preset, weights from a fixed integer PRNG (no libm, so every IEEE machine writes the same
// bytes). llama_model_init_from_user() builds the model, llama_model_save_to_file() writes it
// (or, for the architectures it refuses, lltrace writes the tensors llama.cpp created through
// gguf.h), the optional tensors a real checkpoint lacks are dropped (src/models/archs.c), and
// llama_model_quantize() makes the other file types. The sorter is the exception: its own
// vocabulary, and weights that lltrace trains on first use (sorter.h).
#include "core/internal.h"
#include "models/arch.h"
#include "models/prng.h"
#include "models/sorter.h"

#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef LLT_DEFAULT_VOCAB
#define LLT_DEFAULT_VOCAB ""
#endif
#ifndef LLT_VOCAB_DIR
#define LLT_VOCAB_DIR ""
#endif

// ---- deterministic weights ---------------------------------------------------------------

static uint64_t fnv1a(const char * s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (uint8_t) *s) * 0x100000001b3ULL;
    return h;
}

static bool is_norm(const char * name) { return strstr(name, "_norm.") != NULL; }

struct init_ctx {
    const struct llt_preset * preset;
    const struct llt_arch *   arch;
    struct ggml_tensor **     tensors;   // every tensor llama.cpp created, in its order
    int32_t                   n_tensors, cap_tensors;
    bool                      oom;
    const struct llt_trained * trained; // the sorter's weights; NULL for a random model
};

static void set_tensor_data(struct ggml_tensor * t, void * user_data) {
    struct init_ctx * ic = user_data;
    if (!llt_grow((void **) &ic->tensors, &ic->cap_tensors, ic->n_tensors + 1, sizeof(*ic->tensors))) ic->oom = true;
    if (!ic->oom) ic->tensors[ic->n_tensors++] = t;
    const int64_t n = ggml_nelements(t);
    uint64_t seed = fnv1a(t->name) ^ fnv1a(ic->preset->name);
    // norms are 1, like a fresh checkpoint; the rest keeps activations near unit scale
    const bool norm = is_norm(t->name), ternary = llt_arch_is_ternary(ic->arch, t->name);
    float scale = norm ? 0.0f
                : strcmp(t->name, "token_embd.weight") == 0 ? 1.0f
                : 1.0f / (float) (t->ne[0] >= 1024 ? 32 : t->ne[0] >= 512 ? 24 : 16);
    // every tensor is made F32 (the default of init_from_user); other types come from quantizing
    if (t->type != GGML_TYPE_F32) return;
    const float * w = ic->trained ? llt_trained_get(ic->trained, t->name, n) : NULL;
    if (w) { // the optional tensors llama.cpp adds were not trained: they get the defaults, then go
        ggml_backend_tensor_set(t, w, 0, (size_t) n * sizeof(float));
        return;
    }
    const int64_t chunk = 4096;
    float buf[4096];
    for (int64_t off = 0; off < n; off += chunk) {
        int64_t m = n - off < chunk ? n - off : chunk;
        for (int64_t i = 0; i < m; i++) {
            // BitNet b1.58: one scale times {-1, 0, 1}, which TQ1_0 and TQ2_0 hold exactly
            buf[i] = norm ? 1.0f : ternary ? (float) ((int) (llt_splitmix64(&seed) % 3) - 1) * scale : llt_gauss(&seed) * scale;
        }
        ggml_backend_tensor_set(t, buf, (size_t) off * sizeof(float), (size_t) m * sizeof(float));
    }
}

// ---- metadata ----------------------------------------------------------------------------

// the tokenizer keys of the GGUF at vocab_path into meta
static int copy_vocab(struct gguf_context * meta, const char * vocab_path) {
    struct gguf_init_params gp = { .no_alloc = true, .ctx = NULL };
    struct gguf_context * vocab = gguf_init_from_file(vocab_path, gp);
    if (!vocab) return llt_set_error(LLT_EFORMAT, "cannot read vocabulary GGUF '%s'", vocab_path);
    // the tokenizer only: the vocab file's llama.* hyperparameters describe a 7B model
    for (int64_t k = 0; k < gguf_get_n_kv(vocab); k++) {
        const char * key = gguf_get_key(vocab, k);
        if (strncmp(key, "tokenizer.", 10) != 0) continue;
        enum gguf_type type = gguf_get_kv_type(vocab, k);
        if (type == GGUF_TYPE_STRING) {
            gguf_set_val_str(meta, key, gguf_get_val_str(vocab, k));
        } else if (type == GGUF_TYPE_ARRAY) {
            enum gguf_type at = gguf_get_arr_type(vocab, k);
            size_t n = gguf_get_arr_n(vocab, k);
            if (at == GGUF_TYPE_STRING) {
                const char ** strs = malloc(n * sizeof(char *));
                if (!strs) { gguf_free(vocab); return llt_set_error(LLT_ENOMEM, "out of memory"); }
                for (size_t i = 0; i < n; i++) strs[i] = gguf_get_arr_str(vocab, k, i);
                gguf_set_arr_str(meta, key, strs, n);
                free(strs);
            } else {
                gguf_set_arr_data(meta, key, at, gguf_get_arr_data(vocab, k), n);
            }
        } else if (type == GGUF_TYPE_UINT32) {
            gguf_set_val_u32(meta, key, gguf_get_val_u32(vocab, k));
        } else if (type == GGUF_TYPE_INT32) {
            gguf_set_val_i32(meta, key, gguf_get_val_i32(vocab, k));
        } else if (type == GGUF_TYPE_BOOL) {
            gguf_set_val_bool(meta, key, gguf_get_val_bool(vocab, k));
        } else if (type == GGUF_TYPE_FLOAT32) {
            gguf_set_val_f32(meta, key, gguf_get_val_f32(vocab, k));
        }
    }
    gguf_free(vocab);
    return LLT_OK;
}

static struct gguf_context * make_metadata(const struct llt_preset * p, const struct llt_arch * arch, const char * vocab_path) {
    struct gguf_context * meta = gguf_init_empty();
    if (p->trained) {
        llt_sort_vocab(meta);
        gguf_set_val_str(meta, "general.description", "lltrace's demo model: sorts 2 to 6 distinct letters a-h "
                         "('sort: d a c b =' -> ' a b c d'); trained by lltrace mkmodel sorter");
    } else if (copy_vocab(meta, vocab_path) != LLT_OK) {
        gguf_free(meta);
        return NULL;
    }
    char name[64], key[128];
    snprintf(name, sizeof(name), "lltrace-%s", p->name);
    gguf_set_val_str(meta, "general.architecture", arch->name);
    gguf_set_val_str(meta, "general.name", name);
    gguf_set_val_u32(meta, "general.file_type", LLAMA_FTYPE_ALL_F32);
#define SET_U32(k, v) (snprintf(key, sizeof(key), "%s." k, arch->name), gguf_set_val_u32(meta, key, (uint32_t) (v)))
#define SET_F32(k, v) (snprintf(key, sizeof(key), "%s." k, arch->name), gguf_set_val_f32(meta, key, (v)))
    const int32_t head_dim = p->head_dim ? p->head_dim : p->n_embd / p->n_head;
    SET_U32("context_length", p->n_ctx_train);
    SET_U32("embedding_length", p->n_embd);
    SET_U32("block_count", p->n_layer);
    SET_U32("feed_forward_length", p->n_ff);
    SET_U32("attention.head_count", p->n_head);
    SET_U32("attention.head_count_kv", p->n_head_kv);
    if (arch->rope_base > 0.0f) SET_U32("rope.dimension_count", head_dim);
    if (arch->layer_norm) SET_F32("attention.layer_norm_epsilon", 1e-5f);
    else                  SET_F32("attention.layer_norm_rms_epsilon", arch == llt_arch_find("llama") ? 1e-5f : 1e-6f);
    if (arch->rope_base > 0.0f) SET_F32("rope.freq_base", arch->rope_base);
    if (p->head_dim) {
        SET_U32("attention.key_length", p->head_dim);
        SET_U32("attention.value_length", p->head_dim);
    }
    if (p->n_expert) {
        SET_U32("expert_count", p->n_expert);
        SET_U32("expert_used_count", p->n_expert_used);
        SET_U32("expert_feed_forward_length", p->n_ff);
    }
    if (p->n_swa) {
        SET_U32("attention.sliding_window", p->n_swa);
        SET_U32("attention.sliding_window_pattern", p->swa_pattern);
    }
#undef SET_U32
#undef SET_F32
    return meta;
}

// ---- writing -----------------------------------------------------------------------------

// Why llama.cpp could not write path, which it does not say (its writes fail into a log
// line): the file size limit (ulimit -f) or a full disk; NULL when neither explains it.
static const char * write_failure(const char * path) {
    struct stat sb;
    struct rlimit rl;
    struct statvfs vfs;
    if (stat(path, &sb) == 0 && getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t) sb.st_size >= rl.rlim_cur) {
        return strerror(EFBIG);
    }
    if (statvfs(path, &vfs) == 0 && (geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail) * vfs.f_frsize < (1u << 20)) {
        return strerror(ENOSPC);
    }
    return NULL;
}

// the GGUF of out into f (named dst in messages) when it holds every tensor of the preset
static int write_checked(struct gguf_context * out, int kept, const struct llt_preset * p, const struct llt_arch * arch,
                         FILE * f, const char * dst) {
    const int want = llt_arch_n_tensors(arch, p->n_layer);
    if (kept != want) return llt_set_error(LLT_ELLAMA, "llama.cpp made %d of the %d %s tensors", kept, want, arch->name);
    if (!gguf_write_to_file_ptr(out, f, false) || fflush(f) != 0) return llt_set_error(LLT_EIO, "cannot write '%s': %s", dst, strerror(errno));
    return LLT_OK;
}

// writes the GGUF llama.cpp wrote at src into f keeping only the architecture's tensors
static int keep_tensors(const char * src, const struct llt_preset * p, const struct llt_arch * arch, FILE * f, const char * dst) {
    struct ggml_context * gctx = NULL;
    struct gguf_init_params gp = { .no_alloc = false, .ctx = &gctx };
    struct gguf_context * in = gguf_init_from_file(src, gp);
    if (!in) { // llama_model_save_to_file() does not report a failed write: its output is cut short
        const char * why = write_failure(src);
        return llt_set_error(LLT_EIO, "cannot write '%s': %s", dst, why ? why : "llama.cpp wrote an unreadable model");
    }
    struct gguf_context * out = gguf_init_empty();
    gguf_set_kv(out, in);
    int kept = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(in); i++) {
        const char * name = gguf_get_tensor_name(in, i);
        if (!llt_arch_has_tensor(arch, name, p->n_layer)) continue;
        gguf_add_tensor(out, ggml_get_tensor(gctx, name));
        kept++;
    }
    int rc = write_checked(out, kept, p, arch, f, dst);
    gguf_free(out);
    gguf_free(in);
    ggml_free(gctx);
    return rc;
}

// writes meta and the architecture's tensors among those llama.cpp created (ic) into f, for
// the architectures llama_model_save_to_file() refuses
static int write_created(const struct init_ctx * ic, const struct gguf_context * meta, FILE * f, const char * dst) {
    size_t bytes = 0;
    for (int32_t i = 0; i < ic->n_tensors; i++) bytes += ggml_nbytes(ic->tensors[i]) + ggml_tensor_overhead();
    struct ggml_init_params ip = { .mem_size = bytes + 1024, .mem_buffer = NULL, .no_alloc = false };
    struct ggml_context * gctx = ggml_init(ip);
    if (!gctx) return llt_set_error(LLT_ENOMEM, "out of memory");
    struct gguf_context * out = gguf_init_empty();
    gguf_set_kv(out, meta);
    int kept = 0;
    for (int32_t i = 0; i < ic->n_tensors; i++) {
        const struct ggml_tensor * t = ic->tensors[i];
        if (!llt_arch_has_tensor(ic->arch, t->name, ic->preset->n_layer)) continue;
        struct ggml_tensor * c = ggml_new_tensor(gctx, t->type, ggml_n_dims(t), t->ne);
        ggml_set_name(c, t->name);
        ggml_backend_tensor_get(t, c->data, 0, ggml_nbytes(t));
        gguf_add_tensor(out, c);
        kept++;
    }
    int rc = write_checked(out, kept, ic->preset, ic->arch, f, dst);
    gguf_free(out);
    ggml_free(gctx);
    return rc;
}

// the F32 model into f: llama.cpp writes the file raw by its path, lltrace keeps what belongs
static int make_f32(const struct llt_preset * p, const char * vocab_path, const char * raw, FILE * f, const char * dst) {
    const struct llt_arch * arch = llt_arch_find(p->arch);
    struct init_ctx ic = { .preset = p, .arch = arch };
    struct llt_trained * trained = NULL;
    if (p->trained) {
        struct llt_train_params tp = llt_train_default_params();
        tp.n_embd = p->n_embd;
        tp.n_layer = p->n_layer;
        tp.n_head = p->n_head;
        tp.n_ff = p->n_ff;
        int rc = llt_train_sorter(&tp, &trained, NULL, NULL);
        if (rc != LLT_OK) return rc;
        ic.trained = trained;
    }
    struct gguf_context * meta = make_metadata(p, arch, vocab_path);
    if (!meta) { llt_trained_free(trained); return LLT_EFORMAT; }
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * model = llama_model_init_from_user(meta, set_tensor_data, &ic, mp);
    llt_trained_free(trained);
    int rc = LLT_OK;
    if (!model) {
        rc = llt_set_error(LLT_ELLAMA, "llama.cpp could not build the '%s' model", p->name);
    } else if (ic.oom) {
        rc = llt_set_error(LLT_ENOMEM, "out of memory");
    } else if (arch->own_writer) {
        rc = write_created(&ic, meta, f, dst);
    } else {
        llama_model_save_to_file(model, raw);
    }
    llama_model_free(model);
    gguf_free(meta);
    free(ic.tensors);
    if (rc == LLT_OK && !arch->own_writer) rc = keep_tensors(raw, p, arch, f, dst);
    return rc;
}

// the F32 model quantized into f: llama.cpp reads and writes the files f32 and quant by path
// (a trained preset's F32 comes from the model cache: trained once, quantized to any type)
static int make_quantized(const struct llt_preset * p, int ftype, const char * vocab_path, const char * raw,
                          const char * f32, const char * quant, FILE * f, const char * dst) {
    char * cached = NULL;
    int rc = LLT_OK;
    if (p->trained) {
        if ((rc = llt_default_model(p->name, LLAMA_FTYPE_ALL_F32, &cached)) != LLT_OK) return rc;
        f32 = cached;
    } else {
        FILE * ff = fopen(f32, "wb");
        if (!ff) return llt_set_error(LLT_EIO, "cannot write '%s': %s", dst, strerror(errno));
        rc = make_f32(p, vocab_path, raw, ff, dst);
        if (fclose(ff) != 0 && rc == LLT_OK) rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", dst, strerror(errno));
        if (rc != LLT_OK) return rc;
    }
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.ftype = (enum llama_ftype) ftype;
    qp.nthread = (int32_t) sysconf(_SC_NPROCESSORS_ONLN);
    const uint32_t failed = llama_model_quantize(f32, quant, &qp);
    free(cached);
    if (failed != 0) {
        const char * why = write_failure(quant);
        return why ? llt_set_error(LLT_EIO, "cannot write '%s': %s", dst, why)
                   : llt_set_error(LLT_ELLAMA, "llama.cpp could not quantize to %s", llt_ftype_name(ftype));
    }
    FILE * q = fopen(quant, "rb");
    if (!q) return llt_set_error(LLT_EIO, "cannot read back the quantized model: %s", strerror(errno));
    char buf[65536];
    for (size_t n; (n = fread(buf, 1, sizeof(buf), q)) > 0;) {
        if (fwrite(buf, 1, n, f) != n) {
            rc = llt_set_error(LLT_EIO, "cannot write '%s': %s", dst, strerror(errno));
            break;
        }
    }
    if (rc == LLT_OK && ferror(q)) rc = llt_set_error(LLT_EIO, "cannot read back the quantized model");
    fclose(q);
    return rc;
}

// the tokenizer of the architecture's family: the llama SentencePiece vocab from
// $LLTRACE_VOCAB or the build's LLTRACE_VOCAB (as before there were other architectures), the
// others ggml-vocab-<family>.gguf in $LLTRACE_VOCAB_DIR or the build's LLTRACE_VOCAB_DIR
static const char * family_vocab(const struct llt_arch * arch, char * buf, size_t size) {
    if (strcmp(arch->vocab, "llama-spm") == 0) {
        const char * v = getenv("LLTRACE_VOCAB");
        return v && *v ? v : LLT_DEFAULT_VOCAB;
    }
    const char * dir = getenv("LLTRACE_VOCAB_DIR");
    snprintf(buf, size, "%s/ggml-vocab-%s.gguf", dir && *dir ? dir : LLT_VOCAB_DIR, arch->vocab);
    return buf;
}

int llt_mkmodel(const char * preset, int ftype, const char * vocab_path, const char * out_path) {
    const struct llt_preset * p = llt_preset_find(preset);
    if (!p) return llt_set_error(LLT_EINVAL, "unknown preset '%s' (known: %s)", preset, llt_preset_names());
    if (strcmp(llt_ftype_name(ftype), "?") == 0) return llt_set_error(LLT_EINVAL, "unknown file type %d", ftype);
    char family[4200];
    if (!vocab_path) vocab_path = family_vocab(llt_arch_find(p->arch), family, sizeof(family));
    if (!p->trained && llt_input_check(vocab_path, NULL) != LLT_OK) { // the sorter has its own
        return llt_set_error(LLT_EIO, "cannot read the vocabulary: %s (set %s)", llt_last_error(), vocab_path == family
                             ? "LLTRACE_VOCAB_DIR to llama.cpp's models folder" : "LLTRACE_VOCAB to llama.cpp's models/ggml-vocab-llama-spm.gguf");
    }
    // a failure never leaves a half-made model (llt_outfile); llama.cpp's own files go next to
    // the temporary output, or into TMPDIR when the output is a FIFO or device written directly
    struct llt_outfile * of = NULL;
    int rc = llt_outfile_open(out_path, &of);
    if (rc != LLT_OK) return rc;
    char work[4096], raw[4200], f32[4200], quant[4200];
    const char * tmp = llt_outfile_temp(of), * tmpdir = getenv("TMPDIR");
    if (tmp) snprintf(work, sizeof(work), "%s", tmp);
    else     snprintf(work, sizeof(work), "%s/lltrace-mkmodel.%d", tmpdir && *tmpdir ? tmpdir : "/tmp", (int) getpid());
    snprintf(raw, sizeof(raw), "%s.raw", work);
    snprintf(f32, sizeof(f32), "%s.f32", work);
    snprintf(quant, sizeof(quant), "%s.quant", work);

    llama_backend_init();
    rc = ftype == LLAMA_FTYPE_ALL_F32 ? make_f32(p, vocab_path, raw, llt_outfile_file(of), out_path)
                                      : make_quantized(p, ftype, vocab_path, raw, f32, quant, llt_outfile_file(of), out_path);
    remove(raw);
    remove(f32);
    remove(quant);
    if (rc == LLT_OK) return llt_outfile_commit(of);
    llt_outfile_abort(of);
    return rc;
}

// ---- the cache of built-in models --------------------------------------------------------

static int mkdir_p(const char * path) {
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char * s = buf + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

// the cache folder of built-in models and a model's path in it; false when out of memory
static bool default_model_path(const char * preset, int ftype, char * dir, size_t dir_size, char * path, size_t path_size) {
    char * cache = llt_cache_dir();
    if (!cache) return false;
    snprintf(dir, dir_size, "%s/models", cache);
    free(cache);
    // a trained preset's file is named by its training too: a new recipe is trained anew
    const struct llt_preset * p = llt_preset_find(preset);
    if (p && p->trained) snprintf(path, path_size, "%s/%s-r%d-%s.gguf", dir, preset, SORT_TRAINING_REVISION, llt_ftype_name(ftype));
    else snprintf(path, path_size, "%s/%s-%s.gguf", dir, preset, llt_ftype_name(ftype));
    return true;
}

bool llt_default_model_cached(const char * preset, int ftype) {
    char dir[4096], path[4200];
    return default_model_path(preset, ftype, dir, sizeof(dir), path, sizeof(path)) && access(path, R_OK) == 0;
}

int llt_default_model(const char * preset, int ftype, char ** out_path) {
    *out_path = NULL;
    char dir[4096], path[4200];
    if (!default_model_path(preset, ftype, dir, sizeof(dir), path, sizeof(path))) return llt_set_error(LLT_ENOMEM, "out of memory");
    if (access(path, R_OK) != 0) {
        if (mkdir_p(dir) != 0) return llt_set_error(LLT_EIO, "cannot create cache folder '%s': %s", dir, strerror(errno));
        int rc = llt_mkmodel(preset, ftype, NULL, path);
        if (rc != LLT_OK) return rc;
    }
    *out_path = strdup(path);
    return *out_path ? LLT_OK : llt_set_error(LLT_ENOMEM, "out of memory");
}

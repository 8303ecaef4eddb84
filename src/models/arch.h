// src/models/arch.h: what a built-in model of each architecture holds (private to src/models).
#pragma once

#include <stdbool.h>

struct llt_arch {
    const char *         name;       // general.architecture
    const char *         vocab;      // the family's tokenizer: models/ggml-vocab-<vocab>.gguf
    const char * const * global;     // tensors outside the layers, NULL-terminated
    const char * const * per_layer;  // "attn_q.weight" for blk.<N>.attn_q.weight, NULL-terminated
    float                rope_base;  // rope.freq_base; 0: no RoPE (learned positions)
    bool                 layer_norm; // LayerNorm with biases (layer_norm_epsilon), not RMSNorm
    bool                 ternary;    // the layers' projections are s * {-1, 0, 1} (BitNet b1.58)
    bool                 own_writer; // llama_model_save_to_file refuses it: lltrace writes the GGUF
};

// the architecture named by general.architecture, NULL if lltrace makes none (borrowed, static)
const struct llt_arch * llt_arch_find(const char * name);
// number of tensors a model of arch with n_layer layers holds
int llt_arch_n_tensors(const struct llt_arch * arch, int n_layer);
// true if name is one of arch's tensors in a model of n_layer layers
bool llt_arch_has_tensor(const struct llt_arch * arch, const char * name, int n_layer);
// true if the tensor's values are ternary in arch (the projections of a BitNet layer)
bool llt_arch_is_ternary(const struct llt_arch * arch, const char * name);

// The architectures lltrace makes built-in models of, and their presets.
//
// For each architecture: the tokenizer of its family (a vocab GGUF of llama.cpp's source tree)
// and the exact tensor set a real converted checkpoint has. llama.cpp's
// llama_model_init_from_user() creates every optional tensor of an architecture as well
// (biases, `.scale`, `.input_scale`, rope_freqs, cls.output); mkmodel keeps only these lists.
// A tensor kept but never read would break "every weight read each step", and a `.scale`
// left in even renames the MoE matmul nodes (the name lands on the scaling MUL).
#include "core/internal.h"
#include "models/arch.h"

#include <stdio.h>
#include <string.h>

// ---- presets -----------------------------------------------------------------------------

// The tiny presets are as small as their architecture allows: the vocabulary dominates, so
// the big-vocabulary families get a narrow n_embd; bitnet's ternary types (TQ1_0, TQ2_0) pack
// rows of 256, so its n_embd and n_ff are multiples of 256.
static const struct llt_preset presets[] = {
    //  name            n_embd n_layer n_head n_head_kv n_ff  n_ctx_train arch  head_dim n_expert used n_swa pattern trained
    // trained by lltrace to sort letters (sorter.h): the demo model
    { "sorter",         64,    1,      1,     1,        256,  64,   "llama",    0,  0, 0, 0,  0, true },
    { "tiny",           256,   2,      4,     2,        768,  2048, "llama",    0,  0, 0, 0,  0, false },
    { "small",          768,   12,     12,    12,       2048, 2048, "llama",    0,  0, 0, 0,  0, false },
    { "tiny-gpt2",      128,   2,      4,     4,        512,  1024, "gpt2",     0,  0, 0, 0,  0, false },
    // head_dim 32 with 4 heads: the Q width (128) differs from n_embd, as in Qwen3 checkpoints
    { "tiny-qwen3",     64,    2,      4,     2,        192,  4096, "qwen3",    32, 0, 0, 0,  0, false },
    // layer 0 attends through a sliding window of 16 positions, layer 1 globally
    { "tiny-gemma3",    64,    2,      4,     1,        192,  4096, "gemma3",   32, 0, 0, 16, 2, false },
    // n_ff is each expert's width
    { "tiny-qwen3moe",  64,    2,      4,     2,        64,   4096, "qwen3moe", 32, 8, 2, 0,  0, false },
    { "tiny-bitnet",    256,   2,      4,     4,        512,  2048, "bitnet",   0,  0, 0, 0,  0, false },
};

const struct llt_preset * llt_preset_find(const char * name) {
    for (size_t i = 0; i < sizeof(presets)/sizeof(presets[0]); i++) {
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    }
    return NULL;
}

const char * llt_preset_names(void) { return "sorter, tiny, small, tiny-gpt2, tiny-qwen3, tiny-gemma3, tiny-qwen3moe, tiny-bitnet"; }

// ---- tensor sets -------------------------------------------------------------------------

static const char * const llama_global[] = { "token_embd.weight", "output_norm.weight", "output.weight", NULL };
static const char * const llama_layer[] = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
    "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", NULL };

// GPT-2: learned positions, LayerNorm with biases, one fused QKV projection, every linear
// with a bias; convert_hf_to_gguf.py writes the tied lm_head out as output.weight
static const char * const gpt2_global[] = {
    "token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight", NULL };
static const char * const gpt2_layer[] = {
    "attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight",
    "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias",
    "ffn_down.weight", "ffn_down.bias", NULL };

// Qwen3 0.6B-4B and Gemma 3 tie the output to token_embd; BitNet has no output tensor either
static const char * const tied_global[] = { "token_embd.weight", "output_norm.weight", NULL };
static const char * const qwen3_layer[] = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
    "attn_q_norm.weight", "attn_k_norm.weight",
    "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", NULL };
// Qwen3-30B-A3B: an untied output, a router and three 3-D expert tensors instead of the FFN
static const char * const qwen3moe_layer[] = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
    "attn_q_norm.weight", "attn_k_norm.weight",
    "ffn_norm.weight", "ffn_gate_inp.weight", "ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight", NULL };
static const char * const gemma3_layer[] = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
    "attn_q_norm.weight", "attn_k_norm.weight", "post_attention_norm.weight",
    "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", "post_ffw_norm.weight", NULL };
static const char * const bitnet_layer[] = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_sub_norm.weight",
    "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_sub_norm.weight",
    "ffn_down.weight", NULL };

// Gemma 3's own tokenizer is not among llama.cpp's vocab files; Gemma 4's, of the same
// family and size (262,144 tokens), is
static const struct llt_arch archs[] = {
    //  name        vocab        global        per_layer       rope_base  layer_norm ternary own_writer
    { "llama",    "llama-spm", llama_global, llama_layer,    10000.0f,  false, false, false },
    { "gpt2",     "gpt-2",     gpt2_global,  gpt2_layer,     0.0f,      true,  false, false },
    { "qwen3",    "qwen2",     tied_global,  qwen3_layer,    1000000.0f, false, false, false },
    { "gemma3",   "gemma-4",   tied_global,  gemma3_layer,   1000000.0f, false, false, false },
    { "qwen3moe", "qwen2",     llama_global, qwen3moe_layer, 1000000.0f, false, false, false },
    // llama_model_save_to_file() aborts on bitnet (llama_model_saver_supports_arch)
    { "bitnet",   "llama-spm", tied_global,  bitnet_layer,   10000.0f,  false, true,  true },
};

const struct llt_arch * llt_arch_find(const char * name) {
    for (size_t i = 0; i < sizeof(archs)/sizeof(archs[0]); i++) {
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    }
    return NULL;
}

static int count(const char * const * names) {
    int n = 0;
    while (names[n]) n++;
    return n;
}

int llt_arch_n_tensors(const struct llt_arch * arch, int n_layer) {
    return count(arch->global) + count(arch->per_layer) * n_layer;
}

static bool in_list(const char * const * names, const char * name) {
    for (; *names; names++) {
        if (strcmp(*names, name) == 0) return true;
    }
    return false;
}

bool llt_arch_has_tensor(const struct llt_arch * arch, const char * name, int n_layer) {
    if (in_list(arch->global, name)) return true;
    int layer = -1, len = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &len) != 1 || len == 0 || layer < 0 || layer >= n_layer) return false;
    return in_list(arch->per_layer, name + len);
}

bool llt_arch_is_ternary(const struct llt_arch * arch, const char * name) {
    static const char * const projections[] = {
        "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
        "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", NULL };
    const char * dot = strncmp(name, "blk.", 4) == 0 ? strchr(name + 4, '.') : NULL;
    return arch->ternary && dot && in_list(projections, dot + 1);
}

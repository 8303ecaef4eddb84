// lltrace/intervene.h: interventions: change a node's output while the model runs (ablate,
// scale, steer, patch, set). Part of lltrace.h.
//
// The eval callback's post call for a node comes after the scheduler computed it and before any
// node that reads it: what is written into its output then is what the rest of the graph reads
// (llama.cpp #4843). An intervention names the nodes it changes (a glob, as --dump), and
// optionally a head, positions, steps, a layer and a sequence; llt_iv_set_apply() changes the
// selected elements of one node's output in place. docs/debugging.md has the CLI syntax, the
// spec file's schema, the heads of each architecture's nodes and the limits.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum llt_iv_kind {
    LLT_IV_ABLATE, // write 0
    LLT_IV_SCALE,  // multiply by value
    LLT_IV_ADD,    // add value × a vector (file) to every selected row (--steer; an addend of 0 writes nothing)
    LLT_IV_PATCH,  // replace by the values another run dumped (file: its dump GGUF), same step and node
    LLT_IV_SET,    // write value
    LLT_IV_KIND_COUNT,
};
const char * llt_iv_kind_name(enum llt_iv_kind kind); // "ablate", "scale", "add", "patch", "set"
int          llt_iv_kind_from_name(const char * name); // also "steer" (add), "zero" (ablate); -1 if unknown

#define LLT_IV_ANY (-1) // a selector that selects everything

// One intervention as parsed; plain data, copied by value.
struct llt_intervention {
    enum llt_iv_kind kind;
    char    node[128];              // node name pattern: a glob, or a regex after "re:" (as --dump)
    int32_t head;                   // this attention head only (docs/debugging.md, "Heads"); LLT_IV_ANY: every element
    int32_t pos_first, pos_last;    // token positions [first, last]; LLT_IV_ANY: all
    int32_t step_first, step_last;  // steps (graph computations) [first, last]; LLT_IV_ANY: all
    int32_t layer;                  // nodes of this layer only; LLT_IV_ANY: any
    int32_t seq;                    // tokens of this llama.cpp sequence only (lltrace exec); LLT_IV_ANY: all
    float   value;                  // scale: the factor; add: alpha; set: the value
    char    file[1024];             // add: a .npy vector (ne[0] of the node); patch: a dump GGUF
    char    op[24];                 // nodes of this ggml op only ("ROPE", "MUL_MAT"; Qcur-N is three nodes); "": any
};

// an intervention that selects everything, of kind kind on nodes matching node (value 1 for
// scale and add, 0 otherwise)
struct llt_intervention llt_iv_default(enum llt_iv_kind kind, const char * node);

// Parses the command line's syntax into out (docs/debugging.md, "Interventions"):
//   ablate: NODE[:SEL]...            scale: NODE=F[:SEL]...           set: NODE=V[:SEL]...
//   add:    NODE=FILE.npy[*ALPHA][:SEL]...                            patch: NODE[:SEL]... (file: from)
// SEL is head=H, pos=P or pos=A-B, step=S or step=A-B, layer=L, seq=N, op=OP. from: the dump patched
// from (patch only; NULL otherwise). Checks the syntax only, not the files.
int llt_iv_parse(enum llt_iv_kind kind, const char * text, const char * from, struct llt_intervention * out);

// The text form of an intervention as a JSON object (the spec file's syntax, as the trace's
// table interventions stores it); returns the length it needs, like snprintf
int llt_iv_format_json(const struct llt_intervention * iv, char * buf, size_t size);

// ---- a set of interventions, with their data -----------------------------------------------

struct llt_iv_set;

// caller frees with llt_iv_set_free()
int  llt_iv_set_init(struct llt_iv_set ** out);
void llt_iv_set_free(struct llt_iv_set * set);

// Adds a copy of iv and loads what it needs: the vector of add (a .npy of one row, f32 or f16),
// the dump of patch (opened, its tensors read when applied). LLT_EINVAL/LLT_EIO with a message
// on a bad pattern or an unreadable file.
int  llt_iv_set_add(struct llt_iv_set * set, const struct llt_intervention * iv);
// llt_iv_parse() then llt_iv_set_add()
int  llt_iv_set_add_text(struct llt_iv_set * set, enum llt_iv_kind kind, const char * text, const char * from);
// Adds every intervention of a spec file (JSON; docs/debugging.md, "Spec file"); relative file
// names in it are taken from the spec's folder.
int  llt_iv_set_add_json(struct llt_iv_set * set, const char * path);
// the same from the text of a spec; relative file names are taken from dir (NULL: as they are);
// what names the text in messages ("LLTRACE_INTERVENE")
int  llt_iv_set_add_json_text(struct llt_iv_set * set, const char * text, const char * dir, const char * what);
// The whole set as a spec (the JSON text llt_iv_set_add_json_text reads back); returns the
// length it needs, like snprintf. (lltrace exec hands its interventions to the program so.)
int  llt_iv_set_format_json(const struct llt_iv_set * set, char * buf, size_t size);

int                             llt_iv_set_count(const struct llt_iv_set * set);
const struct llt_intervention * llt_iv_set_get(const struct llt_iv_set * set, int i); // borrowed, lives with set

// Whether intervention i changes a node of this name and layer at this step (its node, layer
// and step selectors; heads, positions and sequences are chosen in llt_iv_set_apply()).
bool llt_iv_set_matches(const struct llt_iv_set * set, int i, const char * name, int32_t layer, int64_t step);
// whether any intervention of the set matches (the eval callback's ask)
bool llt_iv_set_wants(const struct llt_iv_set * set, const char * name, int32_t layer, int64_t step);
// Whether some intervention may name attention's probabilities or scores (kq, kq_soft_max,
// kqv): they exist as tensors only without flash attention, which the tracer then turns off
bool llt_iv_set_needs_probs(const struct llt_iv_set * set);

// Where a node is, for the selectors: its step, its graph's tokens and the model's heads.
struct llt_iv_where {
    int64_t         step;       // the graph computation (llt_tracer's step)
    int32_t         occ;        // earlier nodes of the step with the same name (the dump's ".k"); 0 first
    int32_t         n_tokens;   // tokens the graph computes (the ubatch)
    const int32_t * pos;        // [n_tokens] their positions; NULL: pos0 + row
    const int32_t * seq;        // [n_tokens] their sequences; NULL: all sequence 0
    int32_t         pos0;
    int32_t         n_out;      // of them, the rows whose logits were asked for (the last layer keeps only those)
    const int32_t * out_rows;   // [n_out] their rows, ascending; NULL: the last n_out rows
    int32_t         n_head;     // the model's attention heads (llama_model_n_head)
    int32_t         n_head_kv;  // and K/V heads (llama_model_n_head_kv)
};

// Applies intervention i to t, a node it matches, in the eval callback's post call: changes the
// selected elements of t's output in place (host memory directly, other buffers through
// ggml_backend_tensor_get/set). Returns the number of elements written (>= 0), or a negative
// LLT_E* code with a one-line reason when it cannot be done (a quantized tensor, a head on a
// node without heads, a vector or patch of another shape, positions it cannot tell): refused,
// never ignored; t is then unchanged. 0 for a node of another op than iv's op selector.
int64_t llt_iv_set_apply(struct llt_iv_set * set, int i, struct ggml_tensor * t, const struct llt_iv_where * where);

// The heads of a node, by its name (docs/debugging.md, "Heads"): 0 none (the node has no head
// axis), 1 the heads are slices of each token's row (Q/K/V, kqv_out), 2 the heads are ne[2]
// (kq, kq_soft_max, kqv). kv: the node holds K/V heads (n_head_kv of them).
int  llt_iv_head_layout(const char * name, bool * kv);

#ifdef __cplusplus
}
#endif

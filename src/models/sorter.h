// The built-in trained model "sorter": its task, its vocabulary and its training.
// Private to src/models (mkmodel.c calls it); tests include it through -Isrc.
//
// The task: a prompt "sort: d a c b =" (2 to 6 distinct letters of a..h) is answered with the
// letters in order, " a b c d", then end of text. One token per word:
//   <s> ▁sort: ▁d ▁a ▁c ▁b ▁= | ▁a ▁b ▁c ▁d </s>
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct gguf_context;
struct llama_vocab;

// ---- the task and its vocabulary (sort_task.c) --------------------------------------------

enum {
    SORT_TOK_UNK = 0,
    SORT_TOK_BOS = 1,
    SORT_TOK_EOS = 2,
    SORT_TOK_SORT = 7,   // "▁sort:" (3..6 are its prefixes "▁s" .. "▁sort", which the merges need)
    SORT_TOK_EQ = 8,     // "▁="
    SORT_TOK_A = 9,      // "▁a", then "▁b" .. in order
    SORT_N_LETTERS = 8,  // a..h
    SORT_N_VOCAB = SORT_TOK_A + SORT_N_LETTERS,
    SORT_MIN_LEN = 2,    // letters per prompt
    SORT_MAX_LEN = 6,
    SORT_MAX_TOKENS = 4 + 2 * SORT_MAX_LEN, // <s> sort: x.. = y.. </s>
};

// One example drawn from rng: the whole sequence into tokens (SORT_MAX_TOKENS room); returns
// its length. *n_prompt: tokens up to and including "▁=" (what a generation is given).
int  llt_sort_example(uint64_t * rng, int32_t * tokens, int * n_prompt);

// the tokenizer metadata (tokenizer.ggml.*) of the task's SentencePiece vocabulary into meta
void llt_sort_vocab(struct gguf_context * meta);
// whether a loaded vocabulary is the task's (token for token): the demo model's
bool llt_sort_vocab_is(const struct llama_vocab * vocab);

// ---- training (train.c) -------------------------------------------------------------------

// the training's recipe, in the cached file's name (sorter-r2-F32.gguf): raise it whenever the
// training or its defaults change, so that a cache made by an older lltrace is not used
#define SORT_TRAINING_REVISION 2

struct llt_train_params {
    int32_t  n_embd, n_layer, n_head, n_ff; // the llama's shape
    int32_t  n_steps;   // optimizer steps
    int32_t  n_batch;   // sequences per step
    float    lr;        // peak AdamW learning rate (warm-up, then cosine to a tenth)
    float    attn_entropy; // weight of the attention's entropy at the answer positions in the loss: 0 for
                           // the first half of the steps, rising to this by three quarters (0: none)
    uint64_t seed;      // weights and examples
    int32_t  n_threads; // fixed, so that the same parameters give the same bytes
};

struct llt_train_params llt_train_default_params(void);

struct llt_trained;

// Trains the sorter; *out: caller frees with llt_trained_free(). loss_first/loss_last (may be
// NULL): the mean loss of the first and last tenth of the steps.
int  llt_train_sorter(const struct llt_train_params * p, struct llt_trained ** out, float * loss_first, float * loss_last);
// the trained values of the weight of that llama name with n elements; NULL if there is none
// (borrowed: lives as long as t)
const float * llt_trained_get(const struct llt_trained * t, const char * name, int64_t n);
void llt_trained_free(struct llt_trained * t);

// the F32 tensors of a GGUF file (a sorter llama.cpp saved) as trained values, by their names
int  llt_trained_read(const char * path, struct llt_trained ** out);
// the trainer's own forward pass (what it trained) over one sequence of n tokens at positions
// 0..n-1: logits [n][SORT_N_VOCAB]; to compare with what llama.cpp computes from the file
int  llt_sorter_logits(const struct llt_trained * t, const struct llt_train_params * p, const int32_t * tokens, int n, float * logits);

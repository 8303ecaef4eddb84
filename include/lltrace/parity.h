// lltrace/parity.h: greedy-decode parity: top-k records, the parity JSON Lines format, the comparison. Part of lltrace.h.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LLT_PARITY_MAX_K 64

// one generated step for greedy-decode parity: the chosen token and the k largest logits
struct llt_parity_step {
    int32_t     step;                      // generated token index, from 0
    int32_t     pos;                       // position the token will take
    llama_token token;                     // the chosen token
    char        piece[64];                 // its text (truncated)
    int32_t     k;
    llama_token ids[LLT_PARITY_MAX_K];     // top-k token ids, largest logit first
    float       logits[LLT_PARITY_MAX_K];
    int32_t     seq_id;                    // the llama.cpp sequence (in a trace; 0 in a file)
};


// ---- parity ------------------------------------------------------------------------------
//
// A parity file (the parity JSON Lines format) holds one JSON object per generated step:
//   {"step":N,"token":ID,"top_k":[[ID,LOGIT],...],"piece":"text","pos":P}
// "piece" and "pos" are optional (other engines leave them out; pos is then -1); other keys
// are ignored. Steps count up by one from the first line. A trace keeps the same records in
// table `parity`. docs/trace-format.md, "Parity", has the comparison's rules.

#define LLT_PARITY_LINE_MAX 8192 // a formatted line is shorter than this

// The k (<= LLT_PARITY_MAX_K) largest of n logits into out->ids/logits/k, largest first; ties
// keep the lower id first.
void llt_parity_top_k(const float * logits, int32_t n, int32_t k, struct llt_parity_step * out);

// One step as a parity line without the newline; returns the length it needs, like snprintf.
int  llt_parity_format(const struct llt_parity_step * s, char * buf, size_t size);
// The top-k list alone, [[ID,LOGIT],...] (the parity table's top_k column); like snprintf.
int  llt_parity_format_top_k(const struct llt_parity_step * s, char * buf, size_t size);
// Writes n steps as a parity file, replacing it.
int  llt_parity_write(const char * path, const struct llt_parity_step * steps, int32_t n);
// Parses one parity line. A top_k of more than LLT_PARITY_MAX_K entries keeps the largest;
// top_k is sorted, largest logit first. The error names the column, not the line.
int  llt_parity_parse(const char * line, struct llt_parity_step * out);
// Parses a top-k list alone (the parity table's top_k column) into out's ids, logits and k,
// sorted like llt_parity_parse's. The error names the column.
int  llt_parity_parse_top_k(const char * text, struct llt_parity_step * out);
// Reads a parity file; a malformed line fails naming its number. caller frees *steps with free()
int  llt_parity_read(const char * path, struct llt_parity_step ** steps, int32_t * n_steps);
// Reads the parity records of a run (0: the last run), every sequence's, in the order they were
// made; a run of several sequences numbers them across its sequences. caller frees *steps with free()
int  llt_parity_read_trace(struct llt_store * st, int run_id, struct llt_parity_step ** steps, int32_t * n_steps);

// s as a JSON string; bytes that are not UTF-8 (a token cut inside a character) become U+FFFD
void llt_json_write_string(FILE * f, const char * s);
// length of the valid UTF-8 sequence at s (RFC 3629), 0 if s does not start one
int  llt_utf8_len(const unsigned char * s);

enum llt_parity_verdict {
    LLT_PARITY_IDENTICAL, // same chosen tokens, same top-k ids and logits at every step
    LLT_PARITY_MATCH,     // same chosen tokens; the logits differ
    LLT_PARITY_DIVERGED,  // the chosen tokens differ at first_diff
    LLT_PARITY_LENGTH,    // no difference in the common steps, but one side has more steps
    LLT_PARITY_VERDICT_COUNT,
};
const char * llt_parity_verdict_name(enum llt_parity_verdict v); // "identical", "match", ...

// one step of a comparison; the figures are set only when compared
struct llt_parity_cmp {
    int32_t     step;         // index in both sequences, from 0
    llama_token token_a, token_b;
    bool        compared;     // both sides were fed the same tokens before this step
    bool        same_top1;    // the top-1 ids agree
    bool        logits_equal; // the same ids in the same order with the same logits
    int32_t     overlap;      // ids in both top-k lists
    double      max_diff;     // max |logit A - logit B| over the shared ids; NAN if none
    double      kl;           // KL(A‖B) of the top-k softmaxes, nats
};

struct llt_parity_report {
    int32_t k;              // top-k compared: min(k asked, the shortest top_k of the common steps)
    int32_t n_a, n_b;       // steps of each side
    int32_t n_compared;     // steps compared: the common ones up to and including first_diff
    int32_t first_diff;     // first step whose chosen tokens differ, -1 if none
    int32_t n_top1;         // compared steps whose top-1 ids agree
    double  mean_overlap;   // mean of overlap / k over the compared steps
    double  max_diff;       // largest max_diff of the compared steps, NAN if none
    int32_t max_diff_step;  // -1 if none
    double  mean_kl, max_kl;
    int32_t max_kl_step;
    bool    pos_differs;    // both sides have positions and step 0's differ: different prompts
    // at first_diff, each side's top-1 minus top-2 logit: how near a tie its choice was; NAN
    // without a difference or with fewer than 2 logits on that side
    double  margin_a, margin_b;
    enum llt_parity_verdict verdict;
    struct llt_parity_cmp * steps; // min(n_a, n_b) entries
};

// Compares two sequences, top-k up to k (<= 0: all there is). result: caller frees with
// llt_parity_report_free()
int  llt_parity_compare(const struct llt_parity_step * a, int32_t n_a, const struct llt_parity_step * b, int32_t n_b,
                        int32_t k, struct llt_parity_report * result);
void llt_parity_report_free(struct llt_parity_report * r);

#ifdef __cplusplus
}
#endif

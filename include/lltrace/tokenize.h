// lltrace/tokenize.h: text into tokens through llama.cpp, refused with a message where
// llama.cpp would throw. Part of lltrace.h.
//
// llama.cpp's SentencePiece tokenizer spells a character its vocabulary has no token for in
// byte tokens (<0xXX>); a vocabulary without them makes it throw a C++ exception
// (std::out_of_range from unordered_map::at), which no C caller can catch: the process aborts.
// Every text lltrace tokenizes goes through llt_tokenize(), which checks the text first.
#pragma once

#include "lltrace/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llt_tokenizer;

// The lookups of model's vocabulary (its texts, special tokens, byte tokens), built once.
// model is borrowed and must outlive the tokenizer. caller frees with llt_tokenizer_free()
int  llt_tokenizer_init(const struct llama_model * model, struct llt_tokenizer ** out);
void llt_tokenizer_free(struct llt_tokenizer * tk);

// text into tokens as llama_tokenize(text, add_special, parse_special = true) makes them.
// A character the vocabulary cannot encode (no token holds it where the tokenizer leaves it
// alone, and no byte tokens spell it) fails with LLT_EINVAL naming it and its code point;
// for the demo model 'sorter' the message says what it knows. *tokens: caller frees with free()
int  llt_tokenize(const struct llt_tokenizer * tk, const char * text, bool add_special,
                  llama_token ** tokens, int32_t * n_tokens);

#ifdef __cplusplus
}
#endif

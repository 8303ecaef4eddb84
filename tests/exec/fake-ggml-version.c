// A library that says another ggml version, for lltrace exec's test of a mismatched llama.cpp:
// put in LD_PRELOAD (after lltrace's own), its ggml_version() comes before libggml-base's.
const char * ggml_version(void);
const char * ggml_version(void) { return "0.0.0-lltrace-test"; }

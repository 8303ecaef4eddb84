// The built-in models' random numbers: a fixed integer PRNG and no libm, so every IEEE machine
// draws the same values from the same seed. Private to src/models.
#pragma once

#include <stdint.h>

static inline uint64_t llt_splitmix64(uint64_t * s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// approximately N(0, 1): a sum of four exact 24-bit uniforms, centred and scaled
static inline float llt_gauss(uint64_t * s) {
    float sum = 0.0f;
    for (int i = 0; i < 4; i++) sum += (float) (llt_splitmix64(s) >> 40) * (1.0f / 16777216.0f);
    return (sum - 2.0f) * 1.7320508f;
}

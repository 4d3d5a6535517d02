// What the CPU and CUDA kernels of torch.ops.dau.noisy_replicate share: the
// argument checks and the counter-based normal generator, so both backends
// compute the same numbers. The generator's definition,
// and a float64 reference of it, is dau/ops/reference.py:counter_normal:
//
//   key = mix64(seed)                       mix64 = SplitMix64's finaliser
//   z   = mix64(key + (c >> 1) * GAMMA)     counters 2q and 2q+1 share one z
//   u1  = ((z >> 40) + 1) * 2^-24 in (0, 1],  u2 = (z & 0xFFFFFF) * 2^-24 in [0, 1)
//   n   = sqrt(-2 ln u1) * (c even ? cos(2 pi u2) : sin(2 pi u2))
//
// Everything after z is float32 arithmetic with branch-free polynomials (no
// libm calls), so the CPU loops vectorize and both backends agree to a few
// float32 ulps (the CUDA compiler may fuse multiply-adds).

#pragma once

#include <math.h>
#include <string.h>

#include "op_common.h"

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define DAU_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DAU_HOST_DEVICE inline
#endif

namespace dau::ops::rng {

constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;

DAU_HOST_DEVICE uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The 64 random bits shared by counters 2q and 2q + 1.
DAU_HOST_DEVICE uint64_t pair_bits(uint64_t key, uint64_t q) {
  return mix64(key + q * kGoldenGamma);
}

// ln(u) for u in (0, 1]: u = 2^e * r with r in [sqrt(1/2), sqrt(2)), and
// ln r = 2 atanh(t), t = (r - 1) / (r + 1), |t| <= 0.1716, by its series.
DAU_HOST_DEVICE float log_unit(float u) {
  // u is a multiple of 2^-24 in (0, 1]: exact as a float, never subnormal.
  uint32_t bits;
  memcpy(&bits, &u, sizeof(bits));
  int32_t e = static_cast<int32_t>((bits >> 23) & 0xFFu) - 127;
  bits = (bits & 0x007FFFFFu) | 0x3F800000u;  // r in [1, 2)
  float r;
  memcpy(&r, &bits, sizeof(r));
  const int32_t high = r > 1.41421356f;  // then r / 2 in [sqrt(1/2), 1)
  r *= 1.0f - 0.5f * static_cast<float>(high);
  e += high;
  const float t = (r - 1.0f) / (r + 1.0f);
  const float t2 = t * t;
  const float series =
      1.0f + t2 * (1.0f / 3 + t2 * (1.0f / 5 + t2 * (1.0f / 7 + t2 * (1.0f / 9 + t2 * (1.0f / 11)))));
  return static_cast<float>(e) * 0.693147180559945f + 2.0f * t * series;
}

// cos and sin of 2 pi u for u in [0, 1): u * 4 = k + a with k an integer and
// a in [-1/2, 1/2]; then the angle is k * pi / 2 + a * pi / 2.
DAU_HOST_DEVICE void sincos_turn(float u, float* sin_out, float* cos_out) {
  const float quarters = u * 4.0f;  // exact: u has 24 significant bits
  const float k = static_cast<float>(static_cast<int32_t>(quarters + 0.5f));
  const float x = (quarters - k) * 1.57079632679490f;  // |x| <= pi / 4
  const float x2 = x * x;
  const float s = x * (1.0f + x2 * (-1.0f / 6 + x2 * (1.0f / 120 + x2 * (-1.0f / 5040 +
                                                                         x2 * (1.0f / 362880)))));
  const float c = 1.0f + x2 * (-0.5f + x2 * (1.0f / 24 + x2 * (-1.0f / 720 + x2 * (1.0f / 40320 +
                                                                             x2 * (-1.0f / 3628800)))));
  const int32_t quadrant = static_cast<int32_t>(k) & 3;
  // Rotate (c, s) by quadrant * 90 degrees.
  const float cs = (quadrant & 1) ? s : c;
  const float sn = (quadrant & 1) ? c : s;
  *cos_out = (quadrant == 1 || quadrant == 2) ? -cs : cs;
  *sin_out = (quadrant >= 2) ? -sn : sn;
}

// Box-Muller: the normals r cos(2 pi u2) and r sin(2 pi u2), r = sqrt(-2 ln u1),
// of u1 in (0, 1] and u2 in [0, 1), both multiples of 2^-24.
DAU_HOST_DEVICE void box_muller(float u1, float u2, float* cos_normal, float* sin_normal) {
  float radius_sq = -2.0f * log_unit(u1);
  radius_sq = radius_sq > 0.0f ? radius_sq : 0.0f;  // ln 1 may round to -0
  const float radius = sqrtf(radius_sq);
  float s, c;
  sincos_turn(u2, &s, &c);
  *cos_normal = radius * c;
  *sin_normal = radius * s;
}

// The uniforms of the 64 bits z of a pair: u1 from the top 24 bits, in
// (0, 1]; u2 from the low 24 bits, in [0, 1).
DAU_HOST_DEVICE float pair_u1(uint64_t z) {
  return static_cast<float>(static_cast<int32_t>(z >> 40) + 1) * 5.9604644775390625e-8f;
}
DAU_HOST_DEVICE float pair_u2(uint64_t z) {
  return static_cast<float>(static_cast<int32_t>(z & 0xFFFFFFu)) * 5.9604644775390625e-8f;
}

// The normal of counter c.
DAU_HOST_DEVICE float normal_at(uint64_t key, uint64_t c) {
  const uint64_t z = pair_bits(key, c >> 1);
  float even, odd;
  box_muller(pair_u1(z), pair_u2(z), &even, &odd);
  return (c & 1) ? odd : even;
}

} // namespace dau::ops::rng

namespace dau::ops::noisy_replicate {

// Every check of noisy_replicate's arguments (the device is the backend's).
inline void check_arguments(
    const torch::stable::Tensor& x, int64_t m, double sigma, int64_t offset) {
  check_float_operand("noisy_replicate", "x", x);
  STD_TORCH_CHECK(
      x.dim() >= 1, "noisy_replicate: x must have a batch dimension, got a 0-dim tensor");
  STD_TORCH_CHECK(m >= 1, "noisy_replicate: the number of noisy copies m must be >= 1, got ", m);
  STD_TORCH_CHECK(std::isfinite(sigma), "noisy_replicate: sigma must be finite, got ", sigma);
  STD_TORCH_CHECK(offset >= 0, "noisy_replicate: offset must be >= 0, got ", offset);
}

// The sizes of the output: [(m + 1) * B, *S].
inline std::vector<int64_t> output_sizes(const torch::stable::Tensor& x, int64_t m) {
  std::vector<int64_t> sizes(static_cast<size_t>(x.dim()));
  for (int64_t d = 0; d < x.dim(); ++d) {
    sizes[static_cast<size_t>(d)] = x.size(d);
  }
  sizes[0] *= m + 1;
  return sizes;
}

} // namespace dau::ops::noisy_replicate

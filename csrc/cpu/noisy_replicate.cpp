// CPU kernel of torch.ops.dau.noisy_replicate (schema in ../registration.cpp).
//
// One pass writes the output once: rows 0..B-1 are a copy of x, and every
// noisy element is x + sigma * n with n drawn on the fly from the
// counter-based generator of ../noisy_replicate_common.h. The noise is made
// in blocks: the 64-bit hashes of a block's counter pairs first (scalar), then
// the Box-Muller transform of the whole block (branch-free float32
// polynomials, vectorized), then the block's outputs. Blocks are spread over
// torch's intra-op thread pool; since each element's noise depends only on
// its counter, the result does not depend on the number of threads.

#include "../noisy_replicate_common.h"
#include "cpu_common.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/util/Exception.h>

#include <algorithm>
#include <cstdint>

namespace dau::ops {

using torch::stable::Tensor;

namespace {

// Noise elements per block (an even number, so that a block holds at most
// kBlock / 2 + 1 counter pairs).
constexpr int64_t kBlock = 1024;
constexpr int64_t kGrainSize = 16 * kBlock;

// The normals of counters [first, first + count) into out[0, count).
void fill_normals(uint64_t key, uint64_t first, int64_t count, float* out) {
  constexpr int64_t kPairs = kBlock / 2 + 1;
  float u1[kPairs];
  float u2[kPairs];
  float pairs[2 * kPairs];
  const uint64_t q0 = first >> 1;
  const int64_t n_pairs = static_cast<int64_t>(((first + count - 1) >> 1) - q0) + 1;
  for (int64_t p = 0; p < n_pairs; ++p) {
    const uint64_t z = rng::pair_bits(key, q0 + static_cast<uint64_t>(p));
    u1[p] = rng::pair_u1(z);
    u2[p] = rng::pair_u2(z);
  }
  for (int64_t p = 0; p < n_pairs; ++p) {
    rng::box_muller(u1[p], u2[p], &pairs[2 * p], &pairs[2 * p + 1]);
  }
  const float* start = pairs + (first & 1);
  std::copy(start, start + count, out);
}

template <typename scalar_t>
void replicate(
    const scalar_t* x,
    scalar_t* out,
    int64_t per_copy,  // B * D
    int64_t m,
    double sigma,
    uint64_t key,
    uint64_t offset) {
  using acc_t = typename cpu::OpMath<scalar_t>::type;
  std::copy(x, x + per_copy, out);
  scalar_t* noisy = out + per_copy;
  const acc_t scale = static_cast<acc_t>(sigma);
  const int64_t total = m * per_copy;
  torch::stable::parallel_for(0, total, kGrainSize, [&](int64_t begin, int64_t end) {
    float noise[kBlock];
    for (int64_t block = begin; block < end; block += kBlock) {
      const int64_t block_end = std::min(end, block + kBlock);
      fill_normals(key, offset + static_cast<uint64_t>(block), block_end - block, noise);
      // Split the block where it crosses from one copy of x to the next.
      for (int64_t i = block; i < block_end;) {
        const int64_t k0 = i % per_copy;
        const int64_t stop = std::min(block_end, i + (per_copy - k0));
        const scalar_t* __restrict__ src = x + k0;
        scalar_t* __restrict__ dst = noisy + i;
        const float* __restrict__ n = noise + (i - block);
        const int64_t len = stop - i;
        for (int64_t t = 0; t < len; ++t) {
          dst[t] = static_cast<scalar_t>(
              static_cast<acc_t>(src[t]) + scale * static_cast<acc_t>(n[t]));
        }
        i = stop;
      }
    }
  });
}

} // namespace

Tensor noisy_replicate_cpu(const Tensor& x, int64_t m, double sigma, int64_t seed, int64_t offset) {
  noisy_replicate::check_arguments(x, m, sigma, offset);
  STD_TORCH_CHECK(
      x.is_cpu(), "noisy_replicate: the CPU kernel got x on ", device_string(x));
  const Tensor input = dau::ops::contiguous(x);
  Tensor out = torch::stable::new_empty(input, noisy_replicate::output_sizes(input, m));
  const int64_t per_copy = input.numel();
  if (per_copy == 0) {
    return out;
  }
  const uint64_t key = rng::mix64(static_cast<uint64_t>(seed));
  cpu::dispatch_float(input.scalar_type(), "noisy_replicate", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    replicate<scalar_t>(
        input.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), per_copy, m,
        sigma, key, static_cast<uint64_t>(offset));
  });
  return out;
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CPU, m) {
  m.impl("noisy_replicate", TORCH_BOX(&dau::ops::noisy_replicate_cpu));
}

// CPU kernel of torch.ops.dau.masked_sgd_ (schema in ../registration.cpp).
//
// One fused pass per tensor reads param, grad, momentum buffer and mask once
// and writes param and buffer once. The inner loop is specialised at compile
// time on the mask kind, the momentum phase, Nesterov and weight decay, so it
// has no branches left; the mask selects by bits (exact, branch-free), and
// the float32/float64 loops vectorize.
// Large tensors are split into chunks over torch's intra-op thread pool.
//
// Layouts: when a tensor and its grad / buffer / mask share the same dense
// layout (contiguous, channels-last, any permutation of dims without gaps),
// the kernel walks their memory directly. Anything else (a transposed grad, a
// strided view of a param, an expanded mask) goes through contiguous copies,
// and param and buffer are copied back, so the caller's tensors are updated
// in place whatever their strides.

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Exception.h>
#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace dau::ops {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

namespace {

// Elements per chunk handed to one thread: small tensors run inline, so the
// thread pool is only woken for work that pays for it.
constexpr int64_t kGrainSize = int64_t{1} << 16;

enum class MaskKind { kNone, kByte, kSame };
enum class MomentumKind { kNone, kFirst, kRunning };

struct Hyper {
  double lr;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
};

template <typename T>
struct OpMath {
  using type = T;
};
template <>
struct OpMath<torch::headeronly::Half> {
  using type = float;
};
template <>
struct OpMath<torch::headeronly::BFloat16> {
  using type = float;
};

// Unsigned integers as wide as a storage type, for exact bitwise selects.
template <size_t kSize>
struct Bits;
template <>
struct Bits<2> {
  using type = uint16_t;
};
template <>
struct Bits<4> {
  using type = uint32_t;
};
template <>
struct Bits<8> {
  using type = uint64_t;
};

template <typename T>
inline typename Bits<sizeof(T)>::type to_bits(T value) {
  typename Bits<sizeof(T)>::type out;
  std::memcpy(&out, &value, sizeof(T));
  return out;
}

template <typename T>
inline T from_bits(typename Bits<sizeof(T)>::type bits) {
  T out;
  std::memcpy(static_cast<void*>(&out), &bits, sizeof(T));
  return out;
}

using RangeFn = void (*)(
    void* param,
    const void* grad,
    void* buffer,
    const void* mask,
    int64_t begin,
    int64_t end,
    const Hyper& hyper);

// The whole update of elements [begin, end). Every pointer addresses the same
// logical element at the same offset (same dense layout).
template <
    typename scalar_t,
    typename mask_t,
    MaskKind kMask,
    MomentumKind kMomentum,
    bool kNesterov,
    bool kWeightDecay>
void update_range(
    void* param_v,
    const void* grad_v,
    void* buffer_v,
    const void* mask_v,
    int64_t begin,
    int64_t end,
    const Hyper& hyper) {
  using acc_t = typename OpMath<scalar_t>::type;
  using bits_t = typename Bits<sizeof(scalar_t)>::type;
  scalar_t* __restrict__ param = static_cast<scalar_t*>(param_v);
  const scalar_t* __restrict__ grad = static_cast<const scalar_t*>(grad_v);
  scalar_t* __restrict__ buffer = static_cast<scalar_t*>(buffer_v);
  const mask_t* __restrict__ mask = static_cast<const mask_t*>(mask_v);

  const acc_t lr = static_cast<acc_t>(hyper.lr);
  const acc_t momentum = static_cast<acc_t>(hyper.momentum);
  const acc_t keep = static_cast<acc_t>(1.0 - hyper.dampening);
  const acc_t weight_decay = static_cast<acc_t>(hyper.weight_decay);
  // Multiplying by +-1 is exact, so this is -grad or grad bit for bit.
  const acc_t sign = hyper.maximize ? acc_t(-1) : acc_t(1);

  for (int64_t i = begin; i < end; ++i) {
    // Every operand is loaded and every result stored unconditionally; the
    // mask only selects between values, so the loop has no branches and
    // vectorizes.
    const scalar_t old_param = param[i];
    const acc_t p = static_cast<acc_t>(old_param);
    acc_t g = sign * static_cast<acc_t>(grad[i]);
    if constexpr (kWeightDecay) {
      g = g + weight_decay * p;
    }
    acc_t b = acc_t(0);
    if constexpr (kMomentum == MomentumKind::kFirst) {
      b = g;
    } else if constexpr (kMomentum == MomentumKind::kRunning) {
      b = momentum * static_cast<acc_t>(buffer[i]) + keep * g;
    }
    if constexpr (kMomentum != MomentumKind::kNone) {
      if constexpr (kNesterov) {
        g = g + momentum * b;
      } else {
        g = b;
      }
    }
    const scalar_t updated = static_cast<scalar_t>(p - lr * g);
    if constexpr (kMask == MaskKind::kNone) {
      param[i] = updated;
      if constexpr (kMomentum != MomentumKind::kNone) {
        buffer[i] = static_cast<scalar_t>(b);
      }
    } else {
      // Select by bits: all ones where the mask is non-zero, else all zeros.
      const bits_t select = bits_t(0) - static_cast<bits_t>(mask[i] != mask_t(0));
      param[i] = from_bits<scalar_t>(
          (to_bits(updated) & select) | (to_bits(old_param) & static_cast<bits_t>(~select)));
      if constexpr (kMomentum != MomentumKind::kNone) {
        // +0.0 where masked.
        buffer[i] = from_bits<scalar_t>(to_bits(static_cast<scalar_t>(b)) & select);
      }
    }
  }
}

template <typename scalar_t, typename mask_t, MaskKind kMask, MomentumKind kMomentum>
RangeFn pick_flags(bool nesterov, bool weight_decay) {
  if (nesterov) {
    return weight_decay ? &update_range<scalar_t, mask_t, kMask, kMomentum, true, true>
                        : &update_range<scalar_t, mask_t, kMask, kMomentum, true, false>;
  }
  return weight_decay ? &update_range<scalar_t, mask_t, kMask, kMomentum, false, true>
                      : &update_range<scalar_t, mask_t, kMask, kMomentum, false, false>;
}

template <typename scalar_t, typename mask_t, MaskKind kMask>
RangeFn pick_momentum(MomentumKind kind, bool nesterov, bool weight_decay) {
  switch (kind) {
    case MomentumKind::kNone:
      // Nesterov is meaningless without momentum; validated earlier.
      return pick_flags<scalar_t, mask_t, kMask, MomentumKind::kNone>(false, weight_decay);
    case MomentumKind::kFirst:
      return pick_flags<scalar_t, mask_t, kMask, MomentumKind::kFirst>(nesterov, weight_decay);
    case MomentumKind::kRunning:
      return pick_flags<scalar_t, mask_t, kMask, MomentumKind::kRunning>(nesterov, weight_decay);
  }
  return nullptr;
}

template <typename scalar_t>
RangeFn pick_mask(MaskKind mask, MomentumKind kind, bool nesterov, bool weight_decay) {
  switch (mask) {
    case MaskKind::kNone:
      return pick_momentum<scalar_t, uint8_t, MaskKind::kNone>(kind, nesterov, weight_decay);
    case MaskKind::kByte:
      return pick_momentum<scalar_t, uint8_t, MaskKind::kByte>(kind, nesterov, weight_decay);
    case MaskKind::kSame:
      return pick_momentum<scalar_t, scalar_t, MaskKind::kSame>(kind, nesterov, weight_decay);
  }
  return nullptr;
}

RangeFn pick_kernel(
    ScalarType dtype,
    MaskKind mask,
    MomentumKind kind,
    bool nesterov,
    bool weight_decay) {
  switch (dtype) {
    case ScalarType::Float:
      return pick_mask<float>(mask, kind, nesterov, weight_decay);
    case ScalarType::Double:
      return pick_mask<double>(mask, kind, nesterov, weight_decay);
    case ScalarType::Half:
      return pick_mask<torch::headeronly::Half>(mask, kind, nesterov, weight_decay);
    case ScalarType::BFloat16:
      return pick_mask<torch::headeronly::BFloat16>(mask, kind, nesterov, weight_decay);
    default:
      break;
  }
  STD_TORCH_CHECK(false, "masked_sgd_: unsupported dtype ", torch::headeronly::toString(dtype));
  return nullptr;
}

// ---------------------------------------------------------------- checks ----

std::string shape_string(const Tensor& t) {
  std::ostringstream out;
  out << "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    out << (d ? ", " : "") << t.size(d);
  }
  out << "]";
  return out.str();
}

std::string device_string(const Tensor& t) {
  std::ostringstream out;
  out << (t.is_cpu() ? "cpu" : (t.is_cuda() ? "cuda" : "other"));
  if (!t.is_cpu()) {
    out << ":" << t.get_device_index();
  }
  return out.str();
}

bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.dim() != b.dim()) {
    return false;
  }
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) != b.size(d)) {
      return false;
    }
  }
  return true;
}

bool same_strides(const Tensor& a, const Tensor& b) {
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) != 1 && a.stride(d) != b.stride(d)) {
      return false;
    }
  }
  return true;
}

bool is_supported_dtype(ScalarType dtype) {
  return dtype == ScalarType::Float || dtype == ScalarType::Double ||
      dtype == ScalarType::Half || dtype == ScalarType::BFloat16;
}

// Dense: the elements fill exactly numel() consecutive slots from data_ptr(),
// in some order of the dims, with no gaps and no two elements sharing a slot.
bool is_non_overlapping_and_dense(const Tensor& t) {
  const int64_t ndim = t.dim();
  std::vector<int64_t> dims(static_cast<size_t>(ndim));
  std::iota(dims.begin(), dims.end(), int64_t{0});
  std::sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) {
    return t.stride(a) < t.stride(b);
  });
  int64_t expected = 1;
  for (const int64_t d : dims) {
    const int64_t size = t.size(d);
    if (size == 1) {
      continue;
    }
    if (t.stride(d) != expected) {
      return false;
    }
    expected *= size;
  }
  return true;
}

// A param or buffer that is written must not have two elements in one slot.
bool has_internal_overlap(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) > 1 && t.stride(d) == 0) {
      return true;
    }
  }
  return false;
}

MaskKind mask_kind_of(const std::optional<Tensor>& mask) {
  if (!mask.has_value()) {
    return MaskKind::kNone;
  }
  const ScalarType dtype = mask->scalar_type();
  if (dtype == ScalarType::Bool || dtype == ScalarType::Byte) {
    return MaskKind::kByte;
  }
  return MaskKind::kSame;
}

void check_arguments(
    const std::vector<Tensor>& params,
    const std::vector<Tensor>& grads,
    const std::vector<Tensor>& buffers,
    const std::vector<std::optional<Tensor>>& masks,
    double momentum,
    double dampening,
    bool nesterov) {
  const size_t n = params.size();
  STD_TORCH_CHECK(
      grads.size() == n,
      "masked_sgd_: got ", grads.size(), " grads for ", n, " params; pass one grad per param");
  if (momentum != 0.0) {
    STD_TORCH_CHECK(
        buffers.size() == n,
        "masked_sgd_: momentum is ", momentum, " so one momentum buffer per param is needed, got ",
        buffers.size(), " buffers for ", n, " params");
  } else {
    STD_TORCH_CHECK(
        buffers.empty() || buffers.size() == n,
        "masked_sgd_: got ", buffers.size(), " momentum buffers for ", n,
        " params; pass none or one per param");
  }
  STD_TORCH_CHECK(
      masks.empty() || masks.size() == n,
      "masked_sgd_: got ", masks.size(), " masks for ", n,
      " params; pass none (all dense) or one per param (None = dense)");
  STD_TORCH_CHECK(
      !nesterov || (momentum > 0.0 && dampening == 0.0),
      "masked_sgd_: Nesterov momentum requires momentum > 0 and dampening == 0, got momentum=",
      momentum, " dampening=", dampening);

  const bool use_buffers = momentum != 0.0;
  for (size_t i = 0; i < n; ++i) {
    const Tensor& p = params[i];
    STD_TORCH_CHECK(p.defined(), "masked_sgd_: params[", i, "] is undefined");
    STD_TORCH_CHECK(
        p.layout() == torch::headeronly::Layout::Strided,
        "masked_sgd_: params[", i, "] must be a strided (dense) tensor");
    const ScalarType dtype = p.scalar_type();
    STD_TORCH_CHECK(
        is_supported_dtype(dtype),
        "masked_sgd_: params[", i, "] has dtype ", torch::headeronly::toString(dtype),
        "; supported are float32, float64, float16 and bfloat16");
    STD_TORCH_CHECK(
        !has_internal_overlap(p),
        "masked_sgd_: params[", i, "] has several elements in one memory location "
        "(an expanded view); it cannot be updated in place");

    auto check_like = [&](const Tensor& t, const char* name, bool same_dtype) {
      STD_TORCH_CHECK(t.defined(), "masked_sgd_: ", name, "[", i, "] is undefined");
      STD_TORCH_CHECK(
          t.layout() == torch::headeronly::Layout::Strided,
          "masked_sgd_: ", name, "[", i, "] must be a strided (dense) tensor");
      STD_TORCH_CHECK(
          same_shape(p, t),
          "masked_sgd_: ", name, "[", i, "] has shape ", shape_string(t), " but params[", i,
          "] has shape ", shape_string(p));
      STD_TORCH_CHECK(
          t.is_cpu() == p.is_cpu() && t.is_cuda() == p.is_cuda() &&
              t.get_device_index() == p.get_device_index(),
          "masked_sgd_: ", name, "[", i, "] is on ", device_string(t), " but params[", i,
          "] is on ", device_string(p));
      if (same_dtype) {
        STD_TORCH_CHECK(
            t.scalar_type() == dtype,
            "masked_sgd_: ", name, "[", i, "] has dtype ",
            torch::headeronly::toString(t.scalar_type()), " but params[", i, "] has dtype ",
            torch::headeronly::toString(dtype));
      }
    };
    check_like(grads[i], "grads", true);
    if (use_buffers) {
      check_like(buffers[i], "momentum_buffers", true);
      STD_TORCH_CHECK(
          !has_internal_overlap(buffers[i]),
          "masked_sgd_: momentum_buffers[", i, "] has several elements in one memory "
          "location (an expanded view); it cannot be updated in place");
    }
    if (!masks.empty() && masks[i].has_value()) {
      const Tensor& m = *masks[i];
      check_like(m, "masks", false);
      const ScalarType mdtype = m.scalar_type();
      STD_TORCH_CHECK(
          mdtype == ScalarType::Bool || mdtype == ScalarType::Byte || mdtype == dtype,
          "masked_sgd_: masks[", i, "] has dtype ", torch::headeronly::toString(mdtype),
          "; a mask must be bool, uint8 or the dtype of its param (",
          torch::headeronly::toString(dtype), ")");
    }
  }
}

// --------------------------------------------------------------- kernel -----

void step_one(
    Tensor& param,
    const Tensor& grad,
    Tensor* buffer,
    const std::optional<Tensor>& mask,
    MomentumKind kind,
    const Hyper& hyper) {
  const int64_t n = param.numel();
  if (n == 0) {
    return;
  }
  const ScalarType dtype = param.scalar_type();
  const MaskKind mkind = mask_kind_of(mask);
  const RangeFn fn =
      pick_kernel(dtype, mkind, kind, hyper.nesterov, hyper.weight_decay != 0.0);

  // Fast path: all operands share one dense layout, so offset k of each
  // pointer is the same logical element.
  bool direct = is_non_overlapping_and_dense(param) && same_strides(param, grad);
  if (buffer != nullptr) {
    direct = direct && same_strides(param, *buffer);
  }
  if (mask.has_value()) {
    direct = direct && same_strides(param, *mask);
  }

  // Off the fast path every operand is made contiguous (a no-op for those
  // that already are); `param` stands in for operands that are absent.
  const auto work = [direct](const Tensor& t) {
    return direct ? t : torch::stable::contiguous(t);
  };
  Tensor work_param = work(param);
  const Tensor work_grad = work(grad);
  Tensor work_buffer = buffer != nullptr ? work(*buffer) : param;
  const Tensor work_mask = mask.has_value() ? work(*mask) : param;

  void* p = work_param.mutable_data_ptr();
  const void* g = work_grad.const_data_ptr();
  void* b = buffer != nullptr ? work_buffer.mutable_data_ptr() : nullptr;
  const void* m = mask.has_value() ? work_mask.const_data_ptr() : nullptr;

  torch::stable::parallel_for(0, n, kGrainSize, [&](int64_t begin, int64_t end) {
    fn(p, g, b, m, begin, end, hyper);
  });

  if (!direct) {
    // contiguous() returns the tensor itself when it already is contiguous;
    // only a real copy has to be written back.
    if (work_param.data_ptr() != param.data_ptr()) {
      torch::stable::copy_(param, work_param);
    }
    if (buffer != nullptr && work_buffer.data_ptr() != buffer->data_ptr()) {
      torch::stable::copy_(*buffer, work_buffer);
    }
  }
}

} // namespace

void masked_sgd_cpu(
    std::vector<Tensor> params,
    std::vector<Tensor> grads,
    std::vector<Tensor> momentum_buffers,
    std::vector<std::optional<Tensor>> masks,
    double lr,
    double momentum,
    double dampening,
    double weight_decay,
    bool nesterov,
    bool maximize,
    bool first_step) {
  check_arguments(params, grads, momentum_buffers, masks, momentum, dampening, nesterov);
  for (size_t i = 0; i < params.size(); ++i) {
    STD_TORCH_CHECK(
        params[i].is_cpu(), "masked_sgd_: the CPU kernel got params[", i, "] on ",
        device_string(params[i]), "; all tensors of one call must be on one device");
  }
  const Hyper hyper{lr, momentum, dampening, weight_decay, nesterov, maximize};
  const MomentumKind kind = momentum == 0.0
      ? MomentumKind::kNone
      : (first_step ? MomentumKind::kFirst : MomentumKind::kRunning);
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor* buffer = kind == MomentumKind::kNone ? nullptr : &momentum_buffers[i];
    const std::optional<Tensor> mask =
        masks.empty() ? std::optional<Tensor>() : masks[i];
    step_one(params[i], grads[i], buffer, mask, kind, hyper);
  }
}

} // namespace dau::ops

STABLE_TORCH_LIBRARY_IMPL(dau, CPU, m) {
  m.impl("masked_sgd_", TORCH_BOX(&dau::ops::masked_sgd_cpu));
}

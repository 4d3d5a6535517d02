// Helpers every kernel file of torch.ops.dau shares: how tensors are named in
// error messages and the checks that recur across ops.
//
// Header-only, torch stable ABI headers only; compiled by both the C++
// compiler and nvcc.

#pragma once

#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <cstdint>
#include <sstream>
#include <string>

namespace dau::ops {

inline std::string shape_string(const torch::stable::Tensor& t) {
  std::ostringstream out;
  out << "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    out << (d ? ", " : "") << t.size(d);
  }
  out << "]";
  return out.str();
}

inline std::string device_string(const torch::stable::Tensor& t) {
  std::ostringstream out;
  out << (t.is_cpu() ? "cpu" : (t.is_cuda() ? "cuda" : "other"));
  if (!t.is_cpu()) {
    out << ":" << t.get_device_index();
  }
  return out.str();
}

inline bool same_device(const torch::stable::Tensor& a, const torch::stable::Tensor& b) {
  return a.is_cpu() == b.is_cpu() && a.is_cuda() == b.is_cuda() &&
      a.get_device_index() == b.get_device_index();
}

inline bool is_float_dtype(torch::headeronly::ScalarType dtype) {
  using torch::headeronly::ScalarType;
  return dtype == ScalarType::Float || dtype == ScalarType::Double ||
      dtype == ScalarType::Half || dtype == ScalarType::BFloat16;
}

inline std::string dtype_string(torch::headeronly::ScalarType dtype) {
  return torch::headeronly::toString(dtype);
}

// The shared dtype and layout checks of a floating-point operand.
inline void check_float_operand(
    const char* op, const char* name, const torch::stable::Tensor& t) {
  STD_TORCH_CHECK(t.defined(), op, ": ", name, " is undefined");
  STD_TORCH_CHECK(
      t.layout() == torch::headeronly::Layout::Strided,
      op, ": ", name, " must be a strided (dense) tensor");
  STD_TORCH_CHECK(
      is_float_dtype(t.scalar_type()),
      op, ": ", name, " has dtype ", dtype_string(t.scalar_type()),
      "; supported are float32, float64, float16 and bfloat16");
}

inline void check_same_device(
    const char* op,
    const char* name,
    const torch::stable::Tensor& t,
    const char* ref_name,
    const torch::stable::Tensor& ref) {
  STD_TORCH_CHECK(
      same_device(t, ref),
      op, ": ", name, " is on ", device_string(t), " but ", ref_name, " is on ",
      device_string(ref));
}

// t itself when it is contiguous (no dispatcher call), else a contiguous copy.
inline torch::stable::Tensor contiguous(const torch::stable::Tensor& t) {
  return t.is_contiguous() ? t : torch::stable::contiguous(t);
}

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) with T the backend's C++ type of `dtype`: Float,
// Double, Half or BFloat16 for float32, float64, float16 and bfloat16; any
// other dtype is an error naming `op`.
template <typename Float, typename Double, typename Half, typename BFloat16, typename F>
void dispatch_float_types(torch::headeronly::ScalarType dtype, const char* op, const F& f) {
  using torch::headeronly::ScalarType;
  switch (dtype) {
    case ScalarType::Float:
      f(TypeTag<Float>{});
      break;
    case ScalarType::Double:
      f(TypeTag<Double>{});
      break;
    case ScalarType::Half:
      f(TypeTag<Half>{});
      break;
    case ScalarType::BFloat16:
      f(TypeTag<BFloat16>{});
      break;
    default:
      STD_TORCH_CHECK(
          false, op, ": unsupported dtype ", dtype_string(dtype),
          "; supported are float32, float64, float16 and bfloat16");
  }
}

} // namespace dau::ops

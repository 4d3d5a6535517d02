# The README's commands. `make demo` and `make test` work on a fresh machine with
# Python >= 3.11, Rust and access to PyPI: they create .venv, install torch from PyPI
# once, and build the package (Rust module + torch op library) against that torch.
# Every Python package is installed at the version in constraints.txt (what the tests passed
# with); `make test-latest` tests the newest releases instead, in .venv-latest.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
DEPS   := $(VENV)/.deps-stamp
CONSTRAINTS ?= constraints.txt
PIP_INSTALL = $(PY) -m pip install $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
BUILT  := $(VENV)/.built-stamp
NATIVE_SOURCES := $(shell find rust csrc -type f -not -path '*/target/*' 2>/dev/null) Cargo.toml pyproject.toml

.PHONY: all install test test-latest test-rust test-python lint cuda-check docs demo table bench wheel clean

all: install

$(DEPS): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) "torch>=2.10" "torchvision>=0.25" numpy scipy scikit-learn safetensors \
		click tqdm "maturin>=1.7,<2" pytest hypothesis ruff mypy timm matplotlib \
		mkdocs "mkdocstrings[python]" mkdocs-click
	# nvcc from PyPI, pinned to the CUDA release of torch's runtime headers (CUDA compile check)
	$(PIP_INSTALL) $$($(PY) csrc/build_ops.py --nvcc-requirements)
	touch $@

# Builds the Rust module and the op library (rust/dau-py/build.rs runs csrc/build_ops.py
# with this venv's python), installed in editable mode against the venv's torch.
$(BUILT): $(DEPS) $(NATIVE_SOURCES)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(BIN)):$$PATH \
		$(PY) -m pip install --no-build-isolation --no-deps -e .
	$(BIN)/dau info
	touch $@

install: $(BUILT)

test: test-rust lint cuda-check docs test-python

test-rust:
	DAU_BUILD_OPS=0 cargo test -p dau-core
	DAU_BUILD_OPS=0 cargo clippy --workspace --all-targets -- -D warnings

lint: $(BUILT)
	$(BIN)/ruff check python tests benchmarks
	$(BIN)/mypy
	$(PY) -m mypy.stubtest dau._native

# Compiles the CUDA kernels with nvcc from PyPI against torch's headers (no GPU needed).
cuda-check: $(BUILT)
	$(PY) csrc/build_ops.py --check-cuda-compile-only

# On an AVX-512 CPU the tests marked cpu_kernels run once more on the AVX2 code path of
# oneDNN and of ATen's CPU kernels, so both paths are exercised on one machine.
test-python: $(BUILT)
	$(BIN)/pytest -q
	@if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then \
		echo "AVX-512 CPU: the cpu_kernels tests again on the AVX2 path"; \
		ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 $(BIN)/pytest -q -m "cpu_kernels and not slow"; \
	else echo "no AVX-512 on this CPU: the tests above ran its AVX2 (or lower) path"; fi

# The same tests on the newest releases of torch and the rest (not constraints.txt). It
# rebuilds the native parts in the tree against that torch: `make install` rebuilds them back.
test-latest:
	$(MAKE) test VENV=.venv-latest CONSTRAINTS=

# The main job on scikit-learn's bundled digits: the original model, the retrain-from-scratch
# reference for a 10 % random forget split, DAU unlearning of that split, and the table.
DEMO_DIR := runs/demo
DEMO_ARGS := --dataset digits --arch resnet18 --width 0.25 --epochs 30 --batch-size 64 --lr 0.05 --seed 1
DEMO_DAU := --forget random:10% --batch-size 64 --attacker-iters 200
RUN_OF := $(PY) -c 'import json,sys; print(json.load(sys.stdin)["run"])'
demo: $(BUILT)
	@start=$$(date +%s); set -e; \
	orig=$$($(BIN)/dau train $(DEMO_ARGS) --runs-dir $(DEMO_DIR) --json | $(RUN_OF)); \
	retr=$$($(BIN)/dau train $(DEMO_ARGS) --runs-dir $(DEMO_DIR) --forget random:10% --exclude-forget --json | $(RUN_OF)); \
	dau=$$($(BIN)/dau unlearn --model $$orig $(DEMO_DAU) --runs-dir $(DEMO_DIR) --json | $(RUN_OF)); \
	$(BIN)/dau eval $$orig $$dau --reference $$retr; \
	echo "demo finished in $$(( $$(date +%s) - start )) s (runs in $(DEMO_DIR))"

# The Fashion-MNIST unlearning table (README): every run, then the tables. Hours on a CPU;
# minutes on a GPU host (TABLE_ARGS="--device cuda --jobs 8 --eval-jobs 14").
table: $(BUILT)
	$(PY) benchmarks/unlearning_table.py $(TABLE_ARGS)

bench: $(BUILT)
	$(PY) benchmarks/bench_masked_sgd.py --quick
	$(PY) benchmarks/bench_step.py --quick
	$(PY) benchmarks/sensitivity_precision.py --device cpu --batch 16
	$(PY) benchmarks/bench_ops.py --quick
	$(PY) benchmarks/bench_data.py --quick
	$(PY) benchmarks/bench_allocator.py --quick
	$(PY) benchmarks/bench_layout.py --quick
	$(PY) benchmarks/bench_streaming.py --quick

# The documentation site (mkdocs.yml: the CLI reference from the click commands, the API
# reference from the docstrings, a page per method) in build/docs; warnings are errors.
docs: $(BUILT)
	$(BIN)/mkdocs build --strict

wheel: $(DEPS)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(BIN)):$$PATH \
		$(BIN)/maturin build --release --out dist
	@ls -1 dist/*.whl

clean:
	rm -rf target dist build python/dau/_native*.so python/dau/libdau_ops.so python/dau/_ops_build.json $(BUILT)

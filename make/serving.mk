##@ Serving

# The predictor: KServe's model server with the DR model, V1/V2/SageMaker routes, on one HTTP port.

# Model directory to serve (model.mk sets it from MODEL_ARCH; this is the fallback).
MODEL_DIR ?= models/mobilenet
# HTTP port of `make serve`.
PORT ?= 8080
# Address `make serve` binds (HOST is often set by shells, hence the prefix; 0.0.0.0 accepts other machines).
SERVE_HOST ?= 127.0.0.1
# Inference backend: auto, savedmodel or litert.
BACKEND ?= auto
# Timed requests per measurement in `make bench`.
BENCH_REQUESTS ?= 50
# Models measured by `make bench` (built under MODELS_DIR when missing; model.tflite and the guarded
# model.int8.tflite converted when missing).
BENCH_MODELS ?= mobilenet,vgg19
# Closed-loop connection counts and the length of each closed-loop run, s.
BENCH_CONNECTIONS ?= 1,4,16,64
BENCH_SECONDS ?= 5

.PHONY: serve
serve: model ## Serve MODEL_DIR on SERVE_HOST:PORT until Ctrl-C (V1, V2, SageMaker /invocations, /metrics).
	@$(DR) serve --model-dir $(MODEL_DIR) --host $(SERVE_HOST) --http-port $(PORT) --backend $(BACKEND)

.PHONY: bench
bench: models ## Naive/TF/LiteRT fp32/int8 bare, served and closed-loop, vs the machine's peaks; writes runs/bench-*.json + CSV.
	@$(DR) bench --models $(BENCH_MODELS) --requests $(BENCH_REQUESTS) --model-root $(or $(MODELS_DIR),models) \
		--connections $(BENCH_CONNECTIONS) --seconds $(BENCH_SECONDS)

# Cases of the hypothesis generator in `make fuzz` (make test runs 300).
FUZZ_EXAMPLES ?= 5000
# schemathesis examples per API operation in `make fuzz`.
SCHEMATHESIS_EXAMPLES ?= 500

.PHONY: fuzz
fuzz: setup ## Fuzz a local predictor for minutes (hypothesis over every route + schemathesis on its OpenAPI); fails on any 5xx.
	@DR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) DR_SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) \
	  $(PY) -m pytest tests/serving/test_fuzz.py -m 'fuzz or not fuzz' -p no:cacheprovider -q -s

.PHONY: soak
soak: setup ## 64 clients for 2 minutes plus worst-case memory steps on a local predictor; RSS and fd report in runs/.
	@$(PY) -m pytest tests/serving/test_soak.py -m soak -p no:cacheprovider -q -s

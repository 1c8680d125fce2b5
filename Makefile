# cutout: the two commands of the README, and a few more.
#   make run    set up, build, and cut out the demo photos into out/
#   make test   set up, build, and pass the tests
# CUTOUT_WERROR=1 (CI sets it) turns warnings into errors.

BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
ifneq ($(CUTOUT_WERROR)$(CI),)
CMAKE_ARGS += -DCUTOUT_WERROR=ON
endif
MODELS     := $(CURDIR)/.deps/models
PHOTOS     := $(CURDIR)/.deps/photos

.PHONY: all bootstrap build run test test-asan bench clean

all: build

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The demo: every bundled photo through the default offline model.
run: build
	@mkdir -p out
	@for p in $(PHOTOS)/*.png $(PHOTOS)/*.jpg; do \
	  n=$$(basename "$${p%.*}"); \
	  U2NET_HOME=$(MODELS) $(BUILD)/cutout i -m isnet-general-use --stats "$$p" "out/$$n.png" || exit 1; \
	  echo "out/$$n.png"; \
	done

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same suite with AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: bootstrap
	@cmake -S . -B $(BUILD_ASAN) $(CMAKE_ARGS) -DCUTOUT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS)
	@cd $(BUILD_ASAN) && ctest --output-on-failure -j$(JOBS)

bench: build
	@bench/bench_i.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) out

# uringrpc build. Plain make, out-of-tree objects under $(BUILD).
#   make                  library + programs
#   make test             every test; last line "N passed, M failed, K skipped" (tests/run_all.sh)
#   make test SANITIZE=1  the same under ASan+UBSan (objects in build-asan/)
#   make test TSAN=1      the same under ThreadSanitizer (objects in build-tsan/)
#   make tsan             the multi-shard, stop and offload tests under TSan (~4 min; not in CI)
#   make run              example server on localhost:50051
#   make bench / install / uninstall / clean

SANITIZE ?= 0
TSAN ?= 0
ifeq ($(TSAN),1)
BUILD ?= build-tsan
SAN_FLAGS := -fsanitize=thread
# `make test TSAN=1` too: the gRPC client libraries are not instrumented (tests/tsan.supp).
# The whole suite under TSan runs in about 4 minutes on 2 cores but is not clean: OpenSSL
# inside the gRPC client's TLS threads, and two timing-bound abuse/h2 checks. The narrower
# `make tsan` is clean; it is run by hand, not in CI (no room in CI's 30 minutes beside the rest).
export TSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/tsan.supp
else ifeq ($(SANITIZE),1)
BUILD ?= build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# -O1 as ASan's documentation advises, and line tables only (all a report's stack needs):
# a library object compiles in about half the time of -O2 -g under the sanitizers.
CXXFLAGS ?= -O1 -g1 -fno-omit-frame-pointer
else
BUILD ?= build
SAN_FLAGS :=
endif

CXX      ?= g++
PREFIX   ?= /usr/local
CXXFLAGS ?= -O2 -g -fno-omit-frame-pointer
CXXFLAGS += -std=c++20 -Wall -Wextra -Werror -pthread -MMD -MP $(SAN_FLAGS)
CPPFLAGS += -Iinclude -Isrc -I$(BUILD)/gen
LDFLAGS  += -pthread $(SAN_FLAGS)
# The libraries of uringrpc.deps (the one dependency list, also read by `make install`),
# resolved when a link needs them: pkg-config is only sure to be there once .ci/install-deps
# has run, after this Makefile was read.
DEPS_FILE := uringrpc.deps
DEPS_PC    = $(shell awk '{sub(/#.*/, "")} NF == 1 {print $$1}' $(DEPS_FILE))
DEPS_FLAGS = $(shell awk '{sub(/#.*/, "")} NF > 1 {$$1 = ""; print}' $(DEPS_FILE))
LIBS       = $(shell pkg-config --libs $(DEPS_PC)) $(DEPS_FLAGS)
GRPC_LIBS = $(shell pkg-config --libs grpc++ 2>/dev/null)
TEST_LIBS = -lgtest -lgtest_main $(GRPC_LIBS)

DEPS_STAMP := $(BUILD)/.deps-installed

# src/services/ (built-in services over generated code) adds its objects in its own blocks.
LIB_SRCS   := $(shell find src -name '*.cc' -not -path 'src/codegen/*' -not -path 'src/services/*' 2>/dev/null)
LIB_OBJS   := $(LIB_SRCS:%.cc=$(BUILD)/obj/%.o)
LIB        := $(BUILD)/liburingrpc.a

PROTOS      := $(wildcard proto/*.proto)
PROTO_SRCS  := $(PROTOS:proto/%.proto=$(BUILD)/gen/%.pb.cc)
PROTO_OBJS  := $(PROTO_SRCS:$(BUILD)/gen/%.cc=$(BUILD)/obj/gen/%.o)

# protoc-gen-uringrpc (src/codegen) and the service code it generates from proto/*.proto:
# X.uringrpc.pb.{h,cc} beside protobuf's X.pb.{h,cc}, compiled WITH -Werror.
PLUGIN      := $(BUILD)/bin/protoc-gen-uringrpc
PLUGIN_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard src/codegen/*.cc))
SERVICE_SRCS := $(PROTOS:proto/%.proto=$(BUILD)/gen/%.uringrpc.pb.cc)
SERVICE_HDRS := $(SERVICE_SRCS:%.cc=%.h)
SERVICE_OBJS := $(SERVICE_SRCS:$(BUILD)/gen/%.cc=$(BUILD)/obj/gen/%.o)

COMMON_TEST_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/common/*.cc))
UNIT_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/unit/*.cc))
E2E_OBJS  := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/e2e/*.cc))
SEED_LIB_OBJS := $(BUILD)/obj/tests/seed/seed_service.o
SEED_TEST_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/seed/*_test.cc))

TEST_BINS := $(BUILD)/tests/unit-tests $(BUILD)/tests/e2e-tests $(BUILD)/tests/seed-tests \
             $(BUILD)/tests/compile-fail-tests $(BUILD)/tests/codegen-tests $(BUILD)/tests/interop-tests
PROGRAMS  := $(BUILD)/bin/seed-server $(BUILD)/bin/example-server $(BUILD)/bin/abuse-server \
             $(BUILD)/bin/interop-server $(PLUGIN)

.PHONY: all deps test run bench install clean fuzz
all: $(LIB) $(PROGRAMS)

deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	@bash .ci/install-deps
	@mkdir -p $(@D) && touch $@

# Generated protobuf headers must exist before anything that includes them compiles.
$(LIB_OBJS) $(COMMON_TEST_OBJS) $(UNIT_OBJS) $(E2E_OBJS) $(SEED_LIB_OBJS) $(SEED_TEST_OBJS) \
  $(BUILD)/obj/examples/greeter/greeter_server.o $(BUILD)/obj/tests/seed/seed_server_main.o: | $(PROTO_SRCS)
$(BUILD)/obj/examples/greeter/greeter_server.o $(SERVICE_OBJS): | $(SERVICE_HDRS) $(PROTO_SRCS)

$(BUILD)/obj/%.o: %.cc | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# Test code (tests/) is compiled for build time, not run time: at -O0 with line tables only
# it compiles in about half the time (a fifth under ASan+UBSan), and CI builds it twice.
# The library, the programs and the examples under test keep CXXFLAGS as they are.
TEST_OPT_FLAGS ?= -O0 -g1
$(BUILD)/obj/tests/%.o: CXXFLAGS += $(TEST_OPT_FLAGS)

$(BUILD)/gen/%.pb.cc $(BUILD)/gen/%.pb.h: proto/%.proto | $(DEPS_STAMP)
	@mkdir -p $(@D)
	protoc -Iproto --cpp_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(filter-out -Werror,$(CXXFLAGS)) -c $< -o $@

# protoc's --dependency_out (X.uringrpc.d, included below) lists the imports too: a change
# to an imported .proto regenerates the services that use its types.
$(BUILD)/gen/%.uringrpc.pb.cc $(BUILD)/gen/%.uringrpc.pb.h: proto/%.proto $(PLUGIN) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	protoc -Iproto --plugin=protoc-gen-uringrpc=$(PLUGIN) --uringrpc_out=$(BUILD)/gen \
	  --dependency_out=$(BUILD)/gen/$*.uringrpc.d $<

# Our generated code, unlike protobuf's, compiles under -Werror (the more specific pattern wins).
$(BUILD)/obj/gen/%.uringrpc.pb.o: $(BUILD)/gen/%.uringrpc.pb.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(PLUGIN): $(PLUGIN_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -lprotoc -lprotobuf -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/seed-server: $(BUILD)/obj/tests/seed/seed_server_main.o $(SEED_LIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/bin/example-server: $(BUILD)/obj/examples/greeter/greeter_server.o $(BUILD)/obj/examples/greeter/daemon.o \
  $(BUILD)/obj/gen/helloworld.pb.o $(BUILD)/obj/gen/helloworld.uringrpc.pb.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/tests/unit-tests: $(UNIT_OBJS) $(COMMON_TEST_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(TEST_LIBS) -o $@

$(BUILD)/tests/e2e-tests: $(E2E_OBJS) $(COMMON_TEST_OBJS) $(PROTO_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(TEST_LIBS) -o $@

$(BUILD)/tests/seed-tests: $(SEED_TEST_OBJS) $(SEED_LIB_OBJS) $(COMMON_TEST_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(TEST_LIBS) -o $@

# ---- generated-service tests (tests/codegen)
# Services generated from proto/codegen_*.proto and from Debian's grpc-proto (grpc.testing
# TestService, grpc.health.v1 Health), called by the real gRPC C++ client through stubs
# generated by grpc_cpp_plugin. Everything generated from grpc-proto lives in $(GRPC_GEN).
GRPC_PROTO_DIR := /usr/share/grpc-proto
GRPC_GEN       := $(BUILD)/gen-grpc-proto
GRPC_GEN_BASES := grpc/testing/empty grpc/testing/messages grpc/testing/test grpc/health/v1/health
GRPC_GEN_SRCS  := $(GRPC_GEN_BASES:%=$(GRPC_GEN)/%.pb.cc) \
                  $(patsubst %,$(GRPC_GEN)/%.grpc.pb.cc,grpc/testing/test grpc/health/v1/health) \
                  $(patsubst %,$(GRPC_GEN)/%.uringrpc.pb.cc,grpc/testing/test grpc/health/v1/health)
GRPC_GEN_HDRS  := $(GRPC_GEN_SRCS:%.cc=%.h)
GRPC_GEN_OBJS  := $(GRPC_GEN_SRCS:$(GRPC_GEN)/%.cc=$(BUILD)/obj/gen-grpc-proto/%.o)
CODEGEN_TEST_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/codegen/*.cc))

# On a fresh machine Debian's grpc-proto arrives with .ci/install-deps during this very run;
# without a rule for its .proto files, make rejects the pattern rules below before the
# package is there ("No rule to make target .../reflection.pb.h").
$(GRPC_PROTO_DIR)/%.proto: | $(DEPS_STAMP)
	@test -f $@ || { echo "$@ is missing: is Debian's grpc-proto installed?" >&2; exit 1; }
# ...and never to delete them afterwards as intermediate files.
.PRECIOUS: $(GRPC_PROTO_DIR)/%.proto

$(GRPC_GEN)/%.pb.cc $(GRPC_GEN)/%.pb.h: $(GRPC_PROTO_DIR)/%.proto | $(DEPS_STAMP)
	@mkdir -p $(GRPC_GEN)
	protoc -I$(GRPC_PROTO_DIR) --cpp_out=$(GRPC_GEN) $*.proto
$(GRPC_GEN)/%.grpc.pb.cc $(GRPC_GEN)/%.grpc.pb.h: $(GRPC_PROTO_DIR)/%.proto | $(DEPS_STAMP)
	@mkdir -p $(GRPC_GEN)
	protoc -I$(GRPC_PROTO_DIR) --grpc_out=$(GRPC_GEN) \
	  --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) $*.proto
$(GRPC_GEN)/%.uringrpc.pb.cc $(GRPC_GEN)/%.uringrpc.pb.h: $(GRPC_PROTO_DIR)/%.proto $(PLUGIN) | $(DEPS_STAMP)
	@mkdir -p $(GRPC_GEN)
	protoc -I$(GRPC_PROTO_DIR) --plugin=protoc-gen-uringrpc=$(PLUGIN) --uringrpc_out=$(GRPC_GEN) $*.proto

$(BUILD)/obj/gen-grpc-proto/%.o: $(GRPC_GEN)/%.cc | $(GRPC_GEN_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -I$(GRPC_GEN) $(filter-out -Werror,$(CXXFLAGS)) -c $< -o $@
$(BUILD)/obj/gen-grpc-proto/%.uringrpc.pb.o: $(GRPC_GEN)/%.uringrpc.pb.cc | $(GRPC_GEN_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -I$(GRPC_GEN) $(CXXFLAGS) -c $< -o $@

$(CODEGEN_TEST_OBJS): CPPFLAGS += -I$(GRPC_GEN)
$(CODEGEN_TEST_OBJS): | $(GRPC_GEN_HDRS) $(SERVICE_HDRS) $(PROTO_SRCS)

$(BUILD)/tests/codegen-tests: $(CODEGEN_TEST_OBJS) $(SERVICE_OBJS) $(GRPC_GEN_OBJS) \
  $(COMMON_TEST_OBJS) $(PROTO_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(TEST_LIBS) -o $@
# ---- end generated-service tests

# ---- interop (tests/interop)
# interop-server: grpc.testing.TestService from Debian's grpc-proto through our plugin (the
# $(GRPC_GEN) code above), for any gRPC interop client. interop-tests: the standard interop
# cases run by the real gRPC C++ client against that binary, over h2c and TLS.
INTEROP_SERVER_OBJS := $(patsubst %,$(BUILD)/obj/tests/interop/%.o,interop_server interop_service interop_flags) \
                       $(BUILD)/obj/tests/common/test_certs.o \
                       $(patsubst %,$(BUILD)/obj/gen-grpc-proto/grpc/testing/%.pb.o,empty messages test test.uringrpc)
INTEROP_TEST_OBJS   := $(patsubst %,$(BUILD)/obj/tests/interop/%.o,interop_test server_process) \
                       $(patsubst %,$(BUILD)/obj/gen-grpc-proto/grpc/testing/%.pb.o,empty messages test test.grpc)
INTEROP_OBJS        := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/interop/*.cc))
$(INTEROP_OBJS): CPPFLAGS += -I$(GRPC_GEN)
$(INTEROP_OBJS): | $(GRPC_GEN_HDRS)

$(BUILD)/bin/interop-server: $(INTEROP_SERVER_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/tests/interop-tests: $(INTEROP_TEST_OBJS) $(COMMON_TEST_OBJS) $(LIB) | $(BUILD)/bin/interop-server
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $(filter-out $(BUILD)/bin/interop-server,$^) $(LIBS) $(TEST_LIBS) -o $@
# ---- end interop

# ---- server reflection (src/services/reflection*, tools/grpc_call, tests/reflection)
# grpc.reflection.v1 and v1alpha, generated from Debian's grpc-proto by our plugin into
# $(GRPC_GEN), compiled into liburingrpc.a with uringrpc::ReflectionService.
REFLECTION_BASES    := grpc/reflection/v1/reflection grpc/reflection/v1alpha/reflection
REFLECTION_GEN_HDRS := $(REFLECTION_BASES:%=$(GRPC_GEN)/%.pb.h) $(REFLECTION_BASES:%=$(GRPC_GEN)/%.uringrpc.pb.h)
REFLECTION_GEN_OBJS := $(REFLECTION_BASES:%=$(BUILD)/obj/gen-grpc-proto/%.pb.o) \
                       $(REFLECTION_BASES:%=$(BUILD)/obj/gen-grpc-proto/%.uringrpc.pb.o)
REFLECTION_OBJS     := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard src/services/reflection*.cc))
$(REFLECTION_OBJS): CPPFLAGS += -I$(GRPC_GEN)
$(REFLECTION_OBJS) $(REFLECTION_GEN_OBJS): | $(REFLECTION_GEN_HDRS)
$(LIB): $(REFLECTION_OBJS) $(REFLECTION_GEN_OBJS)

# build/bin/grpc-call: a command-line caller on the gRPC C++ client (not the library): its
# reflection client speaks v1, then v1alpha, with the v1alpha messages (the same wire format).
GRPC_CALL_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tools/grpc_call/*.cc))
$(GRPC_CALL_OBJS): CPPFLAGS += -I$(GRPC_GEN)
$(GRPC_CALL_OBJS): | $(REFLECTION_GEN_HDRS)
$(BUILD)/bin/grpc-call: $(GRPC_CALL_OBJS) $(BUILD)/obj/gen-grpc-proto/grpc/reflection/v1alpha/reflection.pb.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GRPC_LIBS) -lprotobuf -o $@
PROGRAMS += $(BUILD)/bin/grpc-call
all: $(BUILD)/bin/grpc-call
INSTALL_PROGRAMS += $(BUILD)/bin/grpc-call
all: $(BUILD)/bin/grpc-call

# reflection-tests: the real gRPC C++ client (stubs from grpc_cpp_plugin) against
# interop-server and example-server, compared with gRPC C++'s own reflection server
# (grpc-cpp-reflection-server, libgrpc++_reflection, serving the same protos: test only).
REFLECTION_TEST_GEN  := $(BUILD)/gen-reflection-test
$(REFLECTION_TEST_GEN)/%.grpc.pb.cc $(REFLECTION_TEST_GEN)/%.grpc.pb.h: $(GRPC_PROTO_DIR)/%.proto | $(DEPS_STAMP)
	@mkdir -p $(REFLECTION_TEST_GEN)
	protoc -I$(GRPC_PROTO_DIR) --grpc_out=$(REFLECTION_TEST_GEN) \
	  --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) $*.proto
$(REFLECTION_TEST_GEN)/%.grpc.pb.cc $(REFLECTION_TEST_GEN)/%.grpc.pb.h: proto/%.proto | $(DEPS_STAMP)
	@mkdir -p $(REFLECTION_TEST_GEN)
	protoc -Iproto --grpc_out=$(REFLECTION_TEST_GEN) --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) $*.proto
REFLECTION_TEST_GEN_HDRS := $(REFLECTION_TEST_GEN)/helloworld.grpc.pb.h $(REFLECTION_TEST_GEN)/reflection_test.grpc.pb.h \
  $(REFLECTION_BASES:%=$(REFLECTION_TEST_GEN)/%.grpc.pb.h)
$(BUILD)/obj/gen-reflection-test/%.o: $(REFLECTION_TEST_GEN)/%.cc | $(REFLECTION_TEST_GEN_HDRS) $(GRPC_GEN_HDRS) \
  $(REFLECTION_GEN_HDRS) $(PROTO_SRCS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -I$(GRPC_GEN) -I$(REFLECTION_TEST_GEN) $(filter-out -Werror,$(CXXFLAGS)) -c $< -o $@
REFLECTION_TEST_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(filter-out %/grpc_cpp_reflection_server.cc,$(wildcard tests/reflection/*.cc)))
$(REFLECTION_TEST_OBJS) $(BUILD)/obj/tests/reflection/grpc_cpp_reflection_server.o: \
  CPPFLAGS += -I$(GRPC_GEN) -I$(REFLECTION_TEST_GEN)
$(REFLECTION_TEST_OBJS) $(BUILD)/obj/tests/reflection/grpc_cpp_reflection_server.o: \
  | $(REFLECTION_TEST_GEN_HDRS) $(GRPC_GEN_HDRS) $(REFLECTION_GEN_HDRS) $(PROTO_SRCS) $(SERVICE_HDRS)
$(BUILD)/tests/reflection-tests: $(REFLECTION_TEST_OBJS) \
  $(REFLECTION_BASES:%=$(BUILD)/obj/gen-reflection-test/%.grpc.pb.o) $(COMMON_TEST_OBJS) $(LIB) \
  $(patsubst %,$(BUILD)/obj/gen/%.o,helloworld.pb helloworld.uringrpc.pb reflection_test.pb reflection_test.uringrpc.pb) \
  | $(BUILD)/bin/interop-server $(BUILD)/bin/example-server $(BUILD)/tests/bin/grpc-cpp-reflection-server
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(TEST_LIBS) -o $@
# Not linked with liburingrpc.a: libgrpc++_reflection carries its own v1alpha messages.
$(BUILD)/tests/bin/grpc-cpp-reflection-server: $(BUILD)/obj/tests/reflection/grpc_cpp_reflection_server.o \
  $(patsubst %,$(BUILD)/obj/gen/%.pb.o,helloworld reflection_test) \
  $(patsubst %,$(BUILD)/obj/gen-reflection-test/%.grpc.pb.o,helloworld reflection_test) \
  $(patsubst %,$(BUILD)/obj/gen-grpc-proto/grpc/testing/%.pb.o,empty messages test test.grpc)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -lgrpc++_reflection $(GRPC_LIBS) -lprotobuf -o $@
TEST_BINS += $(BUILD)/tests/reflection-tests
# ---- end server reflection

# ---- built-in services (src/services)
# Services on top of the library that use only its public API (uringrpc/health.h), built
# into liburingrpc.a with their protobuf and service code: grpc.health.v1 generated from
# Debian's grpc-proto by our own plugin (the $(GRPC_GEN) rules above). services-tests calls
# them with the real gRPC C++ client (its stubs from grpc_cpp_plugin).
SERVICES_OBJS      := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard src/services/health*.cc))
SERVICES_GEN_OBJS  := $(patsubst %,$(BUILD)/obj/gen-grpc-proto/grpc/health/v1/%.o,health.pb health.uringrpc.pb)
SERVICES_TEST_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/services/*.cc))
$(SERVICES_OBJS) $(SERVICES_TEST_OBJS): CPPFLAGS += -I$(GRPC_GEN)
$(SERVICES_OBJS) $(SERVICES_TEST_OBJS): | $(GRPC_GEN)/grpc/health/v1/health.pb.h \
  $(GRPC_GEN)/grpc/health/v1/health.uringrpc.pb.h $(GRPC_GEN)/grpc/health/v1/health.grpc.pb.h
$(LIB): $(SERVICES_OBJS) $(SERVICES_GEN_OBJS)
TEST_BINS += $(BUILD)/tests/services-tests

$(BUILD)/tests/services-tests: $(SERVICES_TEST_OBJS) $(BUILD)/obj/gen-grpc-proto/grpc/health/v1/health.grpc.pb.o \
  $(COMMON_TEST_OBJS) $(PROTO_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(TEST_LIBS) -o $@
# ---- end built-in services

# ---- compile-fail tests (tests/compile_fail)
# The test compiles misuse snippets at run time with this build's compiler and flags.
COMPILE_FAIL_FLAGS := $(filter-out -MMD -MP,$(CPPFLAGS) $(CXXFLAGS))
$(BUILD)/obj/tests/compile_fail/compile_fail_test.o: CPPFLAGS += -DCOMPILE_FAIL_CXX='"$(CXX)"' \
  -DCOMPILE_FAIL_FLAGS='"$(COMPILE_FAIL_FLAGS)"' -DCOMPILE_FAIL_ROOT='"$(CURDIR)"'
$(BUILD)/tests/compile-fail-tests: $(BUILD)/obj/tests/compile_fail/compile_fail_test.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -lgtest -lgtest_main -o $@
# ---- end compile-fail tests

# ---- abuse suite (tests/abuse)
# abuse-server is the target of tests/abuse/*_test.py (run by `make test` through
# tests/run_all.sh) and of `make soak SOAK_SECONDS=N` (default 600: ten one-minute rows).
SOAK_SECONDS ?= 600
$(BUILD)/bin/abuse-server: $(BUILD)/obj/tests/abuse/abuse_server.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@

.PHONY: soak
soak: $(BUILD)/bin/abuse-server
	BUILD=$(BUILD) /usr/bin/python3 tests/abuse/soak.py --seconds $(SOAK_SECONDS)
# ---- end abuse suite

# ---- waking handlers from other threads (uringrpc/wake.h; examples/backend_call, examples/fanout)
# The examples link gRPC C++ (the backend's callback client), never liburingrpc.a itself.
# wake-tests: the real gRPC C++ client calls them, with a real gRPC C++ server as backend.
WAKE_EXAMPLE_OBJS := $(BUILD)/obj/examples/backend_call/frontend_greeter.o $(BUILD)/obj/examples/fanout/fanout.o
WAKE_TEST_OBJS    := $(patsubst %.cc,$(BUILD)/obj/%.o,$(wildcard tests/wake/*.cc))
WAKE_GEN_OBJS     := $(patsubst %,$(BUILD)/obj/gen/%.o,helloworld.pb helloworld.uringrpc.pb) \
                     $(BUILD)/obj/gen-reflection-test/helloworld.grpc.pb.o
$(WAKE_EXAMPLE_OBJS) $(WAKE_TEST_OBJS) $(BUILD)/obj/examples/backend_call/backend_call_server.o \
  $(BUILD)/obj/examples/fanout/fanout_server.o: CPPFLAGS += -I$(BUILD)/gen -I$(REFLECTION_TEST_GEN)
$(WAKE_EXAMPLE_OBJS) $(WAKE_TEST_OBJS) $(BUILD)/obj/examples/backend_call/backend_call_server.o \
  $(BUILD)/obj/examples/fanout/fanout_server.o: | $(SERVICE_HDRS) $(PROTO_SRCS) $(REFLECTION_TEST_GEN)/helloworld.grpc.pb.h
$(BUILD)/tests/wake-tests: $(WAKE_TEST_OBJS) $(WAKE_EXAMPLE_OBJS) $(WAKE_GEN_OBJS) $(COMMON_TEST_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(TEST_LIBS) -o $@
$(BUILD)/bin/backend-call-example: $(BUILD)/obj/examples/backend_call/backend_call_server.o \
  $(BUILD)/obj/examples/backend_call/frontend_greeter.o $(WAKE_GEN_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(GRPC_LIBS) -lprotobuf -o $@
$(BUILD)/bin/fanout-example: $(BUILD)/obj/examples/fanout/fanout_server.o $(BUILD)/obj/examples/fanout/fanout.o \
  $(patsubst %,$(BUILD)/obj/gen/%.o,helloworld.pb helloworld.uringrpc.pb) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@
# `make fanout-bench`: perf/fanout_bench.cc, 1 publisher and 10,000 subscribers on 2 shards.
.PHONY: fanout-bench
fanout-bench: $(BUILD)/perf/fanout-bench
	$(BUILD)/perf/fanout-bench --subscribers 10000 --shards 2
$(BUILD)/obj/perf/fanout_bench.o: CPPFLAGS += -I$(BUILD)/gen -I$(REFLECTION_TEST_GEN)
$(BUILD)/obj/perf/fanout_bench.o: | $(SERVICE_HDRS) $(PROTO_SRCS) $(REFLECTION_TEST_GEN)/helloworld.grpc.pb.h
$(BUILD)/perf/fanout-bench: $(BUILD)/obj/perf/fanout_bench.o $(BUILD)/obj/examples/fanout/fanout.o $(WAKE_GEN_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) $(GRPC_LIBS) -lprotobuf -o $@
TEST_BINS += $(BUILD)/tests/wake-tests
PROGRAMS  += $(BUILD)/bin/backend-call-example $(BUILD)/bin/fanout-example
all: $(BUILD)/bin/backend-call-example $(BUILD)/bin/fanout-example
# ---- end waking handlers

test: $(TEST_BINS) $(PROGRAMS)
	@BUILD=$(BUILD) SANITIZED=$(SANITIZE) bash tests/run_all.sh

# ---- systemd (tests/systemd, tests/e2e/systemd_test.py)
# systemd-test-server: a server whose shard can be blocked on purpose, for the watchdog
# and sd_notify tests; the socket-activation and restart tests run example-server.
SYSTEMD_TEST_SERVER := $(BUILD)/bin/systemd-test-server
all test: $(SYSTEMD_TEST_SERVER)
$(SYSTEMD_TEST_SERVER): $(BUILD)/obj/tests/systemd/systemd_test_server.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@
# ---- end systemd

# ---- ThreadSanitizer (TSAN=1: objects in build-tsan/)
# `make tsan`: the tests where threads meet, under TSan: every seed test (default options:
# one shard per CPU, and the stop/graceful-stop paths), the multi-shard, offload, stop and
# cancellation e2e tests, and the unit tests that drive a shard from the test thread.
# tests/tsan.sh holds the list; any report fails the run.
.PHONY: tsan tsan-run
tsan:
	$(MAKE) TSAN=1 tsan-run
tsan-run: $(BUILD)/tests/unit-tests $(BUILD)/tests/e2e-tests $(BUILD)/tests/seed-tests $(BUILD)/tests/wake-tests
	@BUILD=$(BUILD) bash tests/tsan.sh
# ---- end ThreadSanitizer

run: $(BUILD)/bin/example-server
	@echo "example server on localhost:50051 (Ctrl-C stops it); call it with any gRPC client, e.g. see examples/README.md"
	$(BUILD)/bin/example-server --port 50051

# ---- install (make install / make uninstall PREFIX=... DESTDIR=...)
# Installs the archive, the public headers, protoc-gen-uringrpc and every program listed in
# INSTALL_PROGRAMS (other blocks add theirs with +=, before or after this one: the list is
# expanded a second time, once the whole Makefile is read), the man pages of man/ by section,
# uringrpc.pc and the CMake package lib/cmake/uringrpc (templates in cmake/ and uringrpc.pc.in,
# dependencies from uringrpc.deps). `make uninstall` removes exactly those files.
VERSION          := 0.1.0
INSTALL_PROGRAMS += $(PLUGIN)
INSTALL_HEADERS  := $(wildcard include/uringrpc/*.h)
INSTALL_MANPAGES := $(wildcard man/*.[1-8])
INSTALL_ROOT      = $(DESTDIR)$(PREFIX)
CMAKE_PKG_DIR     = $(INSTALL_ROOT)/lib/cmake/uringrpc
CMAKE_PKG_FILES  := uringrpc-config.cmake uringrpc-config-version.cmake
# uringrpc.deps split for pkg-config: modules go to Requires.private, flags to Libs.private.
INSTALL_SED       = -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
                    -e 's|@REQUIRES_PRIVATE@|$(strip $(DEPS_PC))|g' \
                    -e 's|@LIBS_PRIVATE@|$(strip -pthread $(DEPS_FLAGS))|g'
.PHONY: uninstall
.SECONDEXPANSION:
install: $(LIB) $$(INSTALL_PROGRAMS)
	install -d $(INSTALL_ROOT)/lib/pkgconfig $(INSTALL_ROOT)/include/uringrpc $(INSTALL_ROOT)/bin $(CMAKE_PKG_DIR)
	install -m 644 $(LIB) $(INSTALL_ROOT)/lib/
	install -m 644 $(INSTALL_HEADERS) $(INSTALL_ROOT)/include/uringrpc/
	install -m 755 $(sort $(INSTALL_PROGRAMS)) $(INSTALL_ROOT)/bin/
	for page in $(INSTALL_MANPAGES); do \
	  install -D -m 644 $$page $(INSTALL_ROOT)/share/man/man$${page##*.}/$${page##*/} || exit 1; done
	sed $(INSTALL_SED) uringrpc.pc.in > $(INSTALL_ROOT)/lib/pkgconfig/uringrpc.pc
	for f in $(CMAKE_PKG_FILES); do \
	  sed $(INSTALL_SED) -e 's|@PKG_DEPS@|$(strip $(DEPS_PC))|g' -e 's|@LINK_FLAGS@|$(strip $(DEPS_FLAGS))|g' \
	    cmake/$$f.in > $(CMAKE_PKG_DIR)/$$f || exit 1; done

uninstall:
	rm -f $(INSTALL_ROOT)/lib/$(notdir $(LIB)) $(INSTALL_ROOT)/lib/pkgconfig/uringrpc.pc \
	  $(addprefix $(INSTALL_ROOT)/include/uringrpc/,$(notdir $(INSTALL_HEADERS))) \
	  $(addprefix $(INSTALL_ROOT)/bin/,$(sort $(notdir $(INSTALL_PROGRAMS)))) \
	  $(addprefix $(CMAKE_PKG_DIR)/,$(CMAKE_PKG_FILES)) \
	  $(foreach page,$(INSTALL_MANPAGES),$(INSTALL_ROOT)/share/man/man$(subst .,,$(suffix $(page)))/$(notdir $(page)))
	rmdir $(INSTALL_ROOT)/include/uringrpc $(CMAKE_PKG_DIR) 2>/dev/null || true
# ---- end install

clean:
	rm -rf build build-asan build-tsan

# ---- fuzzing (tests/fuzz)
# libFuzzer targets, one per tests/fuzz/*_fuzz.cc, built with clang under ASan+UBSan from
# their own objects in build-fuzz/ (the g++ build is untouched). `make fuzz` replays each
# target's regressions, then fuzzes it for FUZZ_SECONDS (default 60) on a scratch copy of
# its seed corpus: tests/fuzz/run.sh. FUZZ_CXX='ccache clang++' reuses compiled objects.
FUZZ_BUILD    := build-fuzz
FUZZ_CXX      ?= clang++
FUZZ_SECONDS  ?= 60
# -fno-sanitize=function: clang 14's check of indirect calls' function types cannot be
# emitted for split coroutine functions ("Cannot represent a difference across sections").
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-sanitize=function
FUZZ_CXXFLAGS := -std=c++20 -O1 -gline-tables-only -fno-omit-frame-pointer -Wall -Wextra -Werror -pthread -MMD -MP \
                 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -Iinclude -Isrc
FUZZ_TARGETS  := $(basename $(notdir $(wildcard tests/fuzz/*_fuzz.cc)))
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/bin/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.cc=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB      := $(FUZZ_BUILD)/liburingrpc-fuzz.a
# The test helpers a fuzz target may share with the unit tests (no gRPC client, no gtest),
# as an archive too: a target links only what it uses.
FUZZ_COMMON_SRCS := tests/common/h2_frames.cc tests/common/memory_transport.cc
FUZZ_COMMON      := $(FUZZ_BUILD)/libtestcommon-fuzz.a
# Keep the targets' objects (make would delete them as intermediates and recompile).
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/tests/fuzz/%.o)

.PHONY: fuzz-build fuzz-clean
fuzz: fuzz-build
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: %.cc | $(DEPS_STAMP)
	@command -v $(lastword $(FUZZ_CXX)) >/dev/null || \
	  { echo "make fuzz needs clang (Debian package clang: clang++ and libFuzzer)" >&2; exit 1; }
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c $< -o $@

# An archive, so each target links only the library objects it uses.
$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_COMMON): $(FUZZ_COMMON_SRCS:%.cc=$(FUZZ_BUILD)/obj/%.o)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/bin/%: $(FUZZ_BUILD)/obj/tests/fuzz/%.o $(FUZZ_COMMON) $(FUZZ_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CXX) -pthread -fsanitize=fuzzer $(FUZZ_SAN) $^ $(LIBS) -o $@

clean: fuzz-clean
fuzz-clean:
	rm -rf $(FUZZ_BUILD)

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
# ---- end fuzzing

# ---- benchmark clients (perf/clients)
# Load generators perf/bench.py uses where h2load cannot express the scenario or costs more
# of its core than the server does; each prints one line of figures.
# storm-client: raw-socket h2c on io_uring, one EmptyCall per connection (conn-storm); libnghttp2's HPACK only.
# h2-stream-client: nghttp2 client session, server/client streaming (stream-out-1k, stream-in-1k).
# stream-client: the real gRPC C++ client for the same streaming calls (bench.py --stream-client grpc).
BENCH_CLIENTS := $(BUILD)/perf/storm-client $(BUILD)/perf/h2-stream-client $(BUILD)/perf/stream-client
.PHONY: bench-clients
bench-clients: $(BENCH_CLIENTS)

$(BUILD)/perf/stream-client: $(BUILD)/obj/perf/clients/stream_client.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GRPC_LIBS) -o $@

$(BUILD)/perf/storm-client: $(BUILD)/obj/perf/clients/storm_client.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -luring -lnghttp2 -o $@

$(BUILD)/perf/h2-stream-client: $(BUILD)/obj/perf/clients/h2_stream_client.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -lnghttp2 -o $@
# ---- end benchmark clients

# ---- compression benchmark (perf/compression_bench.cc)
# zlib against libdeflate on whole gRPC messages; `make compression-bench` prints the
# figures that chose libdeflate (perf/README.md, "Compression library").
.PHONY: compression-bench
compression-bench: $(BUILD)/perf/compression-bench
	$(BUILD)/perf/compression-bench
$(BUILD)/perf/compression-bench: $(BUILD)/obj/perf/compression_bench.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -ldeflate -lz -o $@
# ---- end compression benchmark

# ---- benchmarks (perf)
# `make bench`: installs the benchmark's own Debian packages (perf/install-deps; `make test`
# never needs them), builds our bench-server and the gRPC C++ and grpc-go anchors, then runs
# perf/bench.py. The grpc.testing code generated from Debian's grpc-proto lives under
# $(BUILD)/perf-gen/ and only these targets build it. The Python anchor needs no build.
PERF_DEPS_STAMP := $(BUILD)/.perf-deps-installed
PERF_GEN        := $(BUILD)/perf-gen
TESTING_PROTO_DIR := /usr/share/grpc-proto
PERF_MSG_OBJS   := $(patsubst %,$(BUILD)/obj/perf-gen/grpc/testing/%.pb.o,empty messages)
PERF_CPP_OBJS   := $(PERF_MSG_OBJS) $(BUILD)/obj/perf-gen/grpc/testing/test.pb.o \
                   $(BUILD)/obj/perf-gen/grpc/testing/test.grpc.pb.o
PERF_GEN_HDRS   := $(patsubst %,$(PERF_GEN)/grpc/testing/%.pb.h,empty messages test test.grpc)
BENCH_SERVERS   := $(BUILD)/bin/bench-server $(BUILD)/perf/grpc-cpp-server \
                   $(BUILD)/perf/grpc-go-server
GRPC_CPP_LIBS    = $(shell pkg-config --libs grpc++ protobuf 2>/dev/null)
# grpc-go is built offline from Debian's Go sources: GOPATH mode, no module proxy.
PERF_GO_PKG     := $(PERF_GEN)/go/src/uringrpc/benchpb
# The grpc.testing protos declare no go_package: map all three into one package.
PERF_GO_MAP     := Mgrpc/testing/empty.proto=uringrpc/benchpb,Mgrpc/testing/test.proto=uringrpc/benchpb
PERF_GO_MAP     := $(PERF_GO_MAP),Mgrpc/testing/messages.proto=uringrpc/benchpb
PERF_GO_ENV      = GOPATH=$(abspath $(PERF_GEN)/go):/usr/share/gocode GO111MODULE=off GOPROXY=off \
                   GOFLAGS= GOCACHE=$(abspath $(PERF_GEN)/go-cache)

.PHONY: bench bench-deps bench-servers
bench: bench-deps bench-servers $(BENCH_CLIENTS)
	/usr/bin/python3 perf/bench.py --build $(BUILD)
bench-servers: $(BENCH_SERVERS)
bench-deps: $(PERF_DEPS_STAMP)
# After .ci/install-deps, never beside it: two apt-get runs at once fight over dpkg's lock.
$(PERF_DEPS_STAMP): perf/install-deps | $(DEPS_STAMP)
	@bash perf/install-deps
	@mkdir -p $(@D) && touch $@

$(PERF_GEN)/grpc/testing/%.grpc.pb.cc $(PERF_GEN)/grpc/testing/%.grpc.pb.h: | $(PERF_DEPS_STAMP)
	@mkdir -p $(PERF_GEN)
	protoc -I$(TESTING_PROTO_DIR) --grpc_out=$(PERF_GEN) \
	  --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) grpc/testing/$*.proto
$(PERF_GEN)/grpc/testing/%.pb.cc $(PERF_GEN)/grpc/testing/%.pb.h: | $(PERF_DEPS_STAMP)
	@mkdir -p $(PERF_GEN)
	protoc -I$(TESTING_PROTO_DIR) --cpp_out=$(PERF_GEN) grpc/testing/$*.proto

$(BUILD)/obj/perf-gen/%.o: $(PERF_GEN)/%.cc | $(PERF_GEN_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -I$(PERF_GEN) $(filter-out -Werror,$(CXXFLAGS)) -c $< -o $@

$(BUILD)/obj/perf/anchors/grpc_cpp_server.o: CPPFLAGS += -I$(PERF_GEN)
$(BUILD)/obj/perf/anchors/grpc_cpp_server.o: | $(PERF_GEN_HDRS)
# bench-server serves the TestService class our plugin generates: it takes the grpc.testing
# code of the generated-service tests ($(GRPC_GEN)), not perf-gen's (one copy of each message).
BENCH_GEN_OBJS := $(patsubst %,$(BUILD)/obj/gen-grpc-proto/grpc/testing/%.o,\
                    empty.pb messages.pb test.pb test.uringrpc.pb)
$(BUILD)/obj/perf/bench_server.o: CPPFLAGS += -I$(GRPC_GEN)
$(BUILD)/obj/perf/bench_server.o: | $(GRPC_GEN_HDRS)

$(BUILD)/bin/bench-server: $(BUILD)/obj/perf/bench_server.o $(BENCH_GEN_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/perf/grpc-cpp-server: $(BUILD)/obj/perf/anchors/grpc_cpp_server.o $(PERF_CPP_OBJS)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GRPC_CPP_LIBS) -o $@

$(PERF_GO_PKG)/test_grpc.pb.go: | $(PERF_DEPS_STAMP)
	@mkdir -p $(PERF_GEN)/go/src
	protoc -I$(TESTING_PROTO_DIR) --go_out=$(PERF_GO_MAP):$(PERF_GEN)/go/src \
	  --go-grpc_out=$(PERF_GO_MAP):$(PERF_GEN)/go/src \
	  grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto

# The stamp as a prerequisite: a new package list (e.g. golang-protobuf 1.3 -> 1.5) relinks.
$(BUILD)/perf/grpc-go-server: perf/anchors/go/main.go $(PERF_GO_PKG)/test_grpc.pb.go $(PERF_DEPS_STAMP)
	@mkdir -p $(@D)
	cd perf/anchors/go && $(PERF_GO_ENV) go build -o $(abspath $@) .
# ---- end benchmarks

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(wildcard $(BUILD)/gen/*.uringrpc.d)

# ---- fan-out against grpc-go (issue 15)
# `make fanout-compare`: checks that our fanout-server and grpc-go's apply the same
# slow-subscriber policy, then loads both with the same fanout-client in its own process,
# interleaved rounds (perf/fanout_compare.py; FANOUT_COMPARE_ARGS adds its flags).
# The Go side is built offline from Debian's packages (perf/install-deps), GOPATH mode.
FANOUT_GO_PKG := $(PERF_GEN)/go/src/uringrpc/helloworldpb
FANOUT_GO_MAP := Mhelloworld.proto=uringrpc/helloworldpb
FANOUT_COMPARE_ARGS ?=
.PHONY: fanout-compare fanout-compare-build
fanout-compare: fanout-compare-build
	/usr/bin/python3 perf/fanout_policy_check.py --build $(BUILD)
	/usr/bin/python3 perf/fanout_compare.py --build $(BUILD) $(FANOUT_COMPARE_ARGS)
fanout-compare-build: $(BUILD)/perf/fanout-server $(BUILD)/perf/fanout-client $(BUILD)/perf/grpc-go-fanout-server \
  $(BUILD)/perf/fanout-bench
$(BUILD)/obj/perf/fanout_server.o $(BUILD)/obj/perf/clients/fanout_client.o: CPPFLAGS += -I$(BUILD)/gen -I$(REFLECTION_TEST_GEN)
$(BUILD)/obj/perf/fanout_server.o $(BUILD)/obj/perf/clients/fanout_client.o: \
  | $(SERVICE_HDRS) $(PROTO_SRCS) $(REFLECTION_TEST_GEN)/helloworld.grpc.pb.h
$(BUILD)/perf/fanout-server: $(BUILD)/obj/perf/fanout_server.o $(BUILD)/obj/examples/fanout/fanout.o \
  $(patsubst %,$(BUILD)/obj/gen/%.o,helloworld.pb helloworld.uringrpc.pb) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@
$(BUILD)/perf/fanout-client: $(BUILD)/obj/perf/clients/fanout_client.o $(BUILD)/obj/gen/helloworld.pb.o \
  $(BUILD)/obj/gen-reflection-test/helloworld.grpc.pb.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GRPC_LIBS) -lprotobuf -o $@
$(FANOUT_GO_PKG)/helloworld_grpc.pb.go: proto/helloworld.proto | $(PERF_DEPS_STAMP)
	@mkdir -p $(PERF_GEN)/go/src
	protoc -Iproto --go_out=$(FANOUT_GO_MAP):$(PERF_GEN)/go/src --go-grpc_out=$(FANOUT_GO_MAP):$(PERF_GEN)/go/src \
	  helloworld.proto
$(BUILD)/perf/grpc-go-fanout-server: perf/anchors/go/fanout/main.go $(FANOUT_GO_PKG)/helloworld_grpc.pb.go \
  $(PERF_DEPS_STAMP)
	@mkdir -p $(@D)
	cd perf/anchors/go/fanout && $(PERF_GO_ENV) go build -o $(abspath $@) .
# ---- end fan-out against grpc-go

# ---- getsum benchmark (HttpArena's gRPC unary profile: perf/getsum_bench.py)
# benchmark.BenchmarkService/GetSum (perf/proto/benchmark.proto) served by our getsum-server
# (default ServerOptions, the class protoc-gen-uringrpc generates), by gRPC C++ and by grpc-go,
# loaded by h2load at 256 and 1,024 connections x 100 streams. `make getsum-bench` builds
# the three servers and runs the whole comparison (GETSUM_ARGS passes options to the script).
GETSUM_GEN      := $(BUILD)/getsum-gen
GETSUM_GO_PKG   := $(GETSUM_GEN)/go/src/uringrpc/getsumpb
GETSUM_GO_ENV    = GOPATH=$(abspath $(GETSUM_GEN)/go):/usr/share/gocode GO111MODULE=off GOPROXY=off \
                   GOFLAGS= GOCACHE=$(abspath $(PERF_GEN)/go-cache)
GETSUM_SERVERS  := $(BUILD)/bin/getsum-server $(BUILD)/perf/getsum-grpc-cpp-server \
                   $(BUILD)/perf/getsum-grpc-go-server
GETSUM_ARGS     ?=
.PHONY: getsum-bench getsum-servers
getsum-bench: getsum-servers
	/usr/bin/python3 perf/getsum_bench.py --build $(BUILD) $(GETSUM_ARGS)
getsum-servers: $(GETSUM_SERVERS)

$(GETSUM_GEN)/%.pb.cc $(GETSUM_GEN)/%.pb.h: perf/proto/%.proto | $(DEPS_STAMP)
	@mkdir -p $(GETSUM_GEN)
	protoc -Iperf/proto --cpp_out=$(GETSUM_GEN) $*.proto
$(GETSUM_GEN)/%.uringrpc.pb.cc $(GETSUM_GEN)/%.uringrpc.pb.h: perf/proto/%.proto $(PLUGIN) | $(DEPS_STAMP)
	@mkdir -p $(GETSUM_GEN)
	protoc -Iperf/proto --plugin=protoc-gen-uringrpc=$(PLUGIN) --uringrpc_out=$(GETSUM_GEN) $*.proto
$(GETSUM_GEN)/%.grpc.pb.cc $(GETSUM_GEN)/%.grpc.pb.h: perf/proto/%.proto | $(DEPS_STAMP)
	@mkdir -p $(GETSUM_GEN)
	protoc -Iperf/proto --grpc_out=$(GETSUM_GEN) --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) $*.proto
GETSUM_GEN_HDRS := $(patsubst %,$(GETSUM_GEN)/benchmark.%.h,pb uringrpc.pb grpc.pb)

# protobuf's and grpc_cpp_plugin's code without -Werror, ours with it (as everywhere else).
$(BUILD)/obj/getsum-gen/%.o: $(GETSUM_GEN)/%.cc | $(GETSUM_GEN_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -I$(GETSUM_GEN) $(filter-out -Werror,$(CXXFLAGS)) -c $< -o $@
$(BUILD)/obj/getsum-gen/%.uringrpc.pb.o: $(GETSUM_GEN)/%.uringrpc.pb.cc | $(GETSUM_GEN_HDRS)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) -I$(GETSUM_GEN) $(CXXFLAGS) -c $< -o $@
$(BUILD)/obj/perf/getsum_server.o $(BUILD)/obj/perf/anchors/getsum_grpc_cpp_server.o: CPPFLAGS += -I$(GETSUM_GEN)
$(BUILD)/obj/perf/getsum_server.o $(BUILD)/obj/perf/anchors/getsum_grpc_cpp_server.o: | $(GETSUM_GEN_HDRS)

$(BUILD)/bin/getsum-server: $(BUILD)/obj/perf/getsum_server.o $(BUILD)/obj/getsum-gen/benchmark.pb.o \
  $(BUILD)/obj/getsum-gen/benchmark.uringrpc.pb.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(LIBS) -o $@
$(BUILD)/perf/getsum-grpc-cpp-server: $(BUILD)/obj/perf/anchors/getsum_grpc_cpp_server.o \
  $(BUILD)/obj/getsum-gen/benchmark.pb.o $(BUILD)/obj/getsum-gen/benchmark.grpc.pb.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ $(GRPC_CPP_LIBS) -o $@

# grpc-go offline from Debian's Go sources (GOPATH mode, no module proxy), as the TestService
# anchor; benchmark.proto declares no go_package, so it is mapped to uringrpc/getsumpb.
$(GETSUM_GO_PKG)/benchmark_grpc.pb.go: perf/proto/benchmark.proto | $(PERF_DEPS_STAMP)
	@mkdir -p $(GETSUM_GEN)/go/src
	protoc -Iperf/proto --go_out=Mbenchmark.proto=uringrpc/getsumpb:$(GETSUM_GEN)/go/src \
	  --go-grpc_out=Mbenchmark.proto=uringrpc/getsumpb:$(GETSUM_GEN)/go/src benchmark.proto
$(BUILD)/perf/getsum-grpc-go-server: perf/anchors/go-getsum/main.go $(GETSUM_GO_PKG)/benchmark_grpc.pb.go $(PERF_DEPS_STAMP)
	@mkdir -p $(@D)
	cd perf/anchors/go-getsum && $(GETSUM_GO_ENV) go build -o $(abspath $@) .
# ---- end getsum benchmark

# ---- c100k (issue 16: 100,000 idle connections on one machine)
# hold-client: opens and holds N h2c connections (io_uring, one thread), K of them active on
# command. `make c100k-bench`: perf/c100k_bench.py, ours and the gRPC C++ and grpc-go anchors
# at 100,000 idle connections, then 10,000 active (perf/README.md, "100,000 connections").
# The script takes /tmp/machine.lock exclusively for each server itself (not around the
# whole run, so other work gets the machine in between).
.PHONY: c100k-bench
c100k-bench: $(BUILD)/perf/hold-client $(BENCH_SERVERS) $(BUILD)/perf/storm-client
	/usr/bin/python3 perf/c100k_bench.py --build $(BUILD)
$(BUILD)/perf/hold-client: $(BUILD)/obj/perf/clients/hold_client.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -luring -lnghttp2 -o $@
# ---- end c100k

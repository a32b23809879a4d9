// Misuse that must not compile (a forgotten co_await, `co_return {}`, building a context):
// compiles each snippet of this folder with the build's own compiler and flags (-Werror
// included, baked in by the Makefile) and expects it to fail with its "// expect:" texts.
// control_compiles.cc must compile, so a broken command line cannot pass for a failure.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#ifndef COMPILE_FAIL_CXX
#error "built by the Makefile, which defines COMPILE_FAIL_CXX, COMPILE_FAIL_FLAGS and COMPILE_FAIL_ROOT"
#endif

namespace {

struct Compiled {
  int exit_code = -1;
  std::string output;
};

Compiled compile(const std::string& snippet) {
  // LC_ALL=C: plain ASCII quotes in diagnostics, whatever the caller's locale.
  std::string cmd = std::string("cd '") + COMPILE_FAIL_ROOT + "' && LC_ALL=C " + COMPILE_FAIL_CXX + " " +
                    COMPILE_FAIL_FLAGS + " -fsyntax-only tests/compile_fail/" + snippet + " 2>&1";
  Compiled out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.output.append(buf.data(), n);
  int status = pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The "// expect: text" lines of a snippet.
std::vector<std::string> expectations(const std::string& snippet) {
  std::ifstream in(std::string(COMPILE_FAIL_ROOT) + "/tests/compile_fail/" + snippet);
  std::vector<std::string> out;
  const std::string tag = "// expect: ";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(tag, 0) == 0) out.push_back(line.substr(tag.size()));
  }
  return out;
}

void expect_rejected(const std::string& snippet) {
  auto wanted = expectations(snippet);
  ASSERT_FALSE(wanted.empty()) << snippet << " has no \"// expect:\" line (or cannot be read)";
  Compiled c = compile(snippet);
  EXPECT_NE(c.exit_code, 0) << snippet << " compiled, but must not:\n" << c.output;
  for (const auto& w : wanted) {
    EXPECT_NE(c.output.find(w), std::string::npos)
        << snippet << ": the diagnostics do not mention \"" << w << "\":\n" << c.output;
  }
}

TEST(CompileFail, ControlSnippetCompilesWithTheSameCommand) {
  Compiled c = compile("control_compiles.cc");
  EXPECT_EQ(c.exit_code, 0) << c.output;
}

TEST(CompileFail, WriteWithoutCoAwaitDoesNotCompile) { expect_rejected("discarded_write.cc"); }
TEST(CompileFail, ReadWithoutCoAwaitDoesNotCompile) { expect_rejected("discarded_read.cc"); }
TEST(CompileFail, ReaderNextWithoutCoAwaitDoesNotCompile) { expect_rejected("discarded_reader_next.cc"); }
TEST(CompileFail, SleepForWithoutCoAwaitDoesNotCompile) { expect_rejected("discarded_sleep_for.cc"); }
TEST(CompileFail, OffloadWithoutCoAwaitDoesNotCompile) { expect_rejected("discarded_offload.cc"); }
TEST(CompileFail, TaskWithoutCoAwaitDoesNotCompile) { expect_rejected("discarded_task.cc"); }
TEST(CompileFail, StreamWithoutCoAwaitDoesNotCompile) { expect_rejected("discarded_stream.cc"); }
TEST(CompileFail, CoReturnEmptyBracesIsAmbiguous) { expect_rejected("co_return_empty_braces.cc"); }
TEST(CompileFail, ServerContextCannotBeBuiltByUsers) { expect_rejected("construct_context.cc"); }

}  // namespace

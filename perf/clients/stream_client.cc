// Streaming load generator for perf/bench.py: drives grpc.testing.TestService's
// StreamingOutputCall (server streaming) or StreamingInputCall (client streaming) for a fixed
// time with the real gRPC C++ client and prints one machine-readable line of figures.
// h2load cannot do this: it sends one fixed body per request and only counts bytes.
//
// One thread, one completion queue, one channel (one HTTP/2 connection), K concurrent streams.
// Messages are hand-encoded protobuf so the client needs no generated code and spends as
// little of its own core as possible on serialization.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kOutMethod[] = "/grpc.testing.TestService/StreamingOutputCall";
constexpr char kInMethod[] = "/grpc.testing.TestService/StreamingInputCall";

// ---- protobuf wire format: only the few fields the two methods use.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_len_field(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

// Payload { body = size bytes } (type COMPRESSABLE is proto3's default, so not on the wire).
std::string payload(size_t size) {
  std::string p;
  put_len_field(p, 2, std::string(size, 'x'));
  return p;
}

// StreamingOutputCallRequest { response_parameters = count × { size } }.
std::string output_request(size_t size, int count) {
  std::string param;
  put_varint(param, (1 << 3) | 0);
  put_varint(param, size);
  std::string req;
  for (int i = 0; i < count; ++i) put_len_field(req, 2, param);
  return req;
}

// StreamingInputCallRequest { payload = Payload { body } }.
std::string input_request(size_t size) {
  std::string req;
  put_len_field(req, 1, payload(size));
  return req;
}

// Serialized size of StreamingOutputCallResponse { payload { body = size bytes } }: every
// reply must have exactly this length, which catches a server that sends the wrong thing.
size_t output_response_size(size_t size) {
  size_t inner = 1 + varint_size(size) + size;
  return 1 + varint_size(inner) + inner;
}

// StreamingInputCallResponse.aggregated_payload_size (field 1, varint); -1 if absent/garbled.
int64_t aggregated_size(const grpc::ByteBuffer& buf) {
  std::vector<grpc::Slice> slices;
  if (!buf.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (bytes.empty()) return 0;  // proto3: a zero aggregate is an empty message
  if (bytes[0] != 0x08) return -1;
  uint64_t v = 0;
  for (size_t i = 1, shift = 0; i < bytes.size() && shift < 64; ++i, shift += 7) {
    v |= static_cast<uint64_t>(bytes[i] & 0x7f) << shift;
    if ((bytes[i] & 0x80) == 0) return static_cast<int64_t>(v);
  }
  return -1;
}

grpc::ByteBuffer to_buffer(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

struct Options {
  std::string target = "127.0.0.1:50051";
  std::string mode = "out";  // out: server streaming; in: client streaming
  double seconds = 10;
  size_t size = 1024;        // payload bytes per message
  int streams = 4;           // concurrent calls on the one connection
  int batch = 1000;          // messages per call
};

struct Totals {
  uint64_t messages = 0;     // counted only inside the measured window
  uint64_t calls = 0;        // calls that finished OK inside the window
  uint64_t errors = 0;       // non-OK status or a wrong reply before the deadline
  std::string first_error;
};

class Runner;

// One call in flight. Each pending async operation has its own tag (the Op) so the state
// machine knows which completion arrived; the call is reused only when none is pending.
struct Call {
  enum Kind { kStart, kWrite, kWritesDone, kRead, kFinish };
  struct Op {
    Call* call;
    Kind kind;
  };
  Op ops[5] = {{this, kStart}, {this, kWrite}, {this, kWritesDone}, {this, kRead}, {this, kFinish}};
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> rw;
  grpc::ByteBuffer reply;
  grpc::Status status;
  int pending = 0;
  int written = 0;           // messages written in this call (client streaming)
  bool finishing = false;
  bool bad_reply = false;
};

class Runner {
 public:
  explicit Runner(const Options& o)
      : opt_(o),
        stub_(grpc::CreateChannel(o.target, grpc::InsecureChannelCredentials())),
        out_request_(to_buffer(output_request(o.size, o.batch))),
        in_message_(to_buffer(input_request(o.size))),
        reply_size_(output_response_size(o.size)) {}

  Totals run() {
    calls_.resize(opt_.streams);
    start_ = Clock::now();
    end_ = start_ + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(opt_.seconds));
    for (auto& c : calls_) begin(c);
    int live = opt_.streams;
    bool cancelled = false;
    while (live > 0) {
      void* tag = nullptr;
      bool ok = false;
      // Wake at least every 100 ms so the deadline is honoured even if the server stalls.
      auto r = cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(100));
      if (r == grpc::CompletionQueue::SHUTDOWN) break;
      if (!cancelled && Clock::now() >= end_) {
        // Calls still running at the deadline are cut off; their status is not an error.
        for (auto& c : calls_)
          if (c.ctx) c.ctx->TryCancel();
        cancelled = true;
      }
      if (r == grpc::CompletionQueue::TIMEOUT) continue;
      auto* op = static_cast<Call::Op*>(tag);
      if (!on_event(*op->call, op->kind, ok)) --live;
    }
    elapsed_ = std::chrono::duration<double>(std::min(Clock::now(), end_) - start_).count();
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
    return totals_;
  }

  double elapsed() const { return elapsed_; }

 private:
  bool in_window() const { return Clock::now() < end_; }

  void begin(Call& c) {
    c.ctx = std::make_unique<grpc::ClientContext>();
    c.rw = stub_.PrepareCall(c.ctx.get(), opt_.mode == "out" ? kOutMethod : kInMethod, &cq_);
    c.written = 0;
    c.finishing = false;
    c.bad_reply = false;
    c.pending = 1;
    c.rw->StartCall(&c.ops[Call::kStart]);
  }

  void error(const std::string& what) {
    ++totals_.errors;
    if (totals_.first_error.empty()) totals_.first_error = what;
  }

  void finish(Call& c) {
    if (c.finishing) return;
    c.finishing = true;
    ++c.pending;
    c.rw->Finish(&c.status, &c.ops[Call::kFinish]);
  }

  // Returns false when this call is done for good (the window is over).
  bool on_event(Call& c, Call::Kind kind, bool ok) {
    --c.pending;
    switch (kind) {
      case Call::kStart:
        if (!ok) {
          finish(c);
          break;
        }
        ++c.pending;
        if (opt_.mode == "out") {
          c.rw->Write(out_request_, &c.ops[Call::kWrite]);
          ++c.pending;
          c.rw->Read(&c.reply, &c.ops[Call::kRead]);
        } else {
          c.rw->Write(in_message_, &c.ops[Call::kWrite]);
        }
        break;
      case Call::kWrite:
        if (opt_.mode == "out" || !ok) {
          if (ok) {
            ++c.pending;
            c.rw->WritesDone(&c.ops[Call::kWritesDone]);
          } else if (opt_.mode == "in") {
            finish(c);
          }
          break;
        }
        ++c.written;
        if (in_window()) ++totals_.messages;
        ++c.pending;
        if (c.written < opt_.batch && in_window()) {
          c.rw->Write(in_message_, &c.ops[Call::kWrite]);
        } else {
          c.rw->WritesDone(&c.ops[Call::kWritesDone]);
        }
        break;
      case Call::kWritesDone:
        if (opt_.mode == "in") {
          if (!ok) {
            finish(c);
            break;
          }
          ++c.pending;
          c.rw->Read(&c.reply, &c.ops[Call::kRead]);
        }
        break;
      case Call::kRead:
        if (!ok) {
          finish(c);
          break;
        }
        if (opt_.mode == "out") {
          if (c.reply.Length() != reply_size_) c.bad_reply = true;
          if (in_window()) ++totals_.messages;
          ++c.pending;
          c.rw->Read(&c.reply, &c.ops[Call::kRead]);
        } else {
          int64_t agg = aggregated_size(c.reply);
          if (agg != static_cast<int64_t>(c.written * opt_.size)) c.bad_reply = true;
          finish(c);
        }
        break;
      case Call::kFinish:
        if (in_window()) {
          if (!c.status.ok()) {
            error("status " + std::to_string(c.status.error_code()) + ": " + c.status.error_message());
          } else if (c.bad_reply) {
            error("reply of the wrong size");
          } else {
            ++totals_.calls;
          }
        }
        break;
    }
    if (c.pending > 0) return true;
    c.rw.reset();
    c.ctx.reset();
    if (!in_window()) return false;
    begin(c);
    return true;
  }

  Options opt_;
  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ByteBuffer out_request_;
  grpc::ByteBuffer in_message_;
  size_t reply_size_;
  std::vector<Call> calls_;
  Clock::time_point start_, end_;
  double elapsed_ = 0;
  Totals totals_;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: stream-client --target HOST:PORT --mode out|in [--seconds S] [--size BYTES]\n"
               "                     [--streams K] [--batch MESSAGES_PER_CALL]\n"
               "  out: StreamingOutputCall, BATCH replies of SIZE bytes per call (server streaming)\n"
               "  in:  StreamingInputCall, BATCH requests of SIZE bytes per call (client streaming)\n"
               "prints one line: stream-client key=value ...; exit 1 on any error or no messages\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    std::string v = argv[++i];
    if (a == "--target") o.target = v;
    else if (a == "--mode") o.mode = v;
    else if (a == "--seconds") o.seconds = std::atof(v.c_str());
    else if (a == "--size") o.size = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--streams") o.streams = std::atoi(v.c_str());
    else if (a == "--batch") o.batch = std::atoi(v.c_str());
    else usage();
  }
  if ((o.mode != "out" && o.mode != "in") || o.seconds <= 0 || o.streams < 1 || o.batch < 1) usage();

  Runner runner(o);
  Totals t = runner.run();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  double secs = runner.elapsed();
  double mb = static_cast<double>(t.messages) * o.size / 1e6;
  std::printf(
      "stream-client mode=%s target=%s seconds=%.3f streams=%d batch=%d size=%zu messages=%llu "
      "calls=%llu errors=%llu mb_per_s=%.2f msgs_per_s=%.1f client_cpu_s=%.3f\n",
      o.mode.c_str(), o.target.c_str(), secs, o.streams, o.batch, o.size,
      static_cast<unsigned long long>(t.messages), static_cast<unsigned long long>(t.calls),
      static_cast<unsigned long long>(t.errors), secs > 0 ? mb / secs : 0.0,
      secs > 0 ? t.messages / secs : 0.0, cpu);
  if (!t.first_error.empty()) std::fprintf(stderr, "stream-client: first error: %s\n", t.first_error.c_str());
  return (t.errors == 0 && t.messages > 0) ? 0 : 1;
}

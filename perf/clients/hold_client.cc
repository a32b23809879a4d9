// Connection-holding load generator for perf/c100k_bench.py (issue 16): opens N h2c
// connections, makes one checked EmptyCall on each so the server holds a real session, then
// keeps them open (answering SETTINGS and PING) until told to stop. On command, K of them
// turn active: together they make R calls per second, taking turns (each one EmptyCall every
// K/R seconds), every reply checked (:status 200, one empty message, grpc-status 0).
//
// One thread, io_uring. What a connection keeps here is small (a 48-byte slot and nghttp2's
// HPACK inflater) because 100,000 of them must fit beside the server: reads land in a shared
// provided-buffer ring (multishot recv), a frame split across reads is copied aside only
// until it completes, and each send owns a small heap buffer until its completion.
//
// Requests look like a gRPC client's: the first on a connection inserts :path, :authority, te,
// content-type, user-agent and grpc-accept-encoding into the server's HPACK table (literals
// with incremental indexing, as gRPC's encoder does), later ones refer to those entries, so
// the server holds the same decoder state it would for a real client.
//
// Control: stdin, one command a line. "active K R": the first K ready connections make R
// calls per second in all, in turn (one call each every K/R s); "idle": back to holding, prints the
// active phase's line; "report": prints a status line; "quit" or EOF: prints and exits (the
// kernel closes the sockets). When every connection has finished its setup, prints one
// "hold-client ramp ..." line.

#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// ---- HTTP/2 and HPACK encoding of what the client sends
void put_frame_header(std::string& out, size_t len, uint8_t type, uint8_t flags, uint32_t stream) {
  const unsigned char h[9] = {static_cast<unsigned char>(len >> 16), static_cast<unsigned char>(len >> 8),
                              static_cast<unsigned char>(len), type, flags,
                              static_cast<unsigned char>(stream >> 24), static_cast<unsigned char>(stream >> 16),
                              static_cast<unsigned char>(stream >> 8), static_cast<unsigned char>(stream)};
  out.append(reinterpret_cast<const char*>(h), 9);
}

void put_hpack_int(std::string& out, uint8_t first, int prefix_bits, size_t v) {
  size_t max = (1u << prefix_bits) - 1;
  if (v < max) {
    out.push_back(static_cast<char>(first | v));
    return;
  }
  out.push_back(static_cast<char>(first | max));
  for (v -= max; v >= 128; v >>= 7) out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  out.push_back(static_cast<char>(v));
}

// A literal field (RFC 7541 6.2.1 with incremental indexing, 6-bit name index; 6.2.2
// without indexing, 4-bit); name_index 0: a literal name.
void put_literal(std::string& out, bool index, int name_index, const std::string& name, const std::string& value) {
  if (index) put_hpack_int(out, 0x40, 6, name_index);
  else put_hpack_int(out, 0x00, 4, name_index);
  if (name_index == 0) {
    put_hpack_int(out, 0x00, 7, name.size());
    out += name;
  }
  put_hpack_int(out, 0x00, 7, value.size());
  out += value;
}

// The request's header block: `first` inserts the six entries, later blocks index them.
// Static table: 3 :method POST, 6 :scheme http, 4 :path, 1 :authority, 31 content-type,
// 58 user-agent. Dynamic entries, newest first: 62 grpc-accept-encoding ... 67 :path.
// `literal`: every block carries every field as a literal without indexing (the server's
// decoder table stays empty), to tell what the indexed entries cost the server.
std::string header_block(bool first, bool literal, const std::string& authority, const std::string& path) {
  std::string b;
  b.push_back(static_cast<char>(0x83));
  b.push_back(static_cast<char>(0x86));
  if (first || literal) {
    bool index = !literal;
    put_literal(b, index, 4, "", path);
    put_literal(b, index, 1, "", authority);
    put_literal(b, index, 0, "te", "trailers");
    put_literal(b, index, 31, "", "application/grpc");
    put_literal(b, index, 58, "", "grpc-c++/1.51.1 grpc-c/29.0.0 (linux; chttp2)");
    put_literal(b, index, 0, "grpc-accept-encoding", "identity, deflate, gzip");
  } else {
    for (int index = 67; index >= 62; --index) put_hpack_int(b, 0x80, 7, index);
  }
  return b;
}

// HEADERS + DATA (the empty message, END_STREAM) on `stream`, from a prebuilt block.
std::string request(const std::string& block, uint32_t stream) {
  std::string out;
  put_frame_header(out, block.size(), 0x1, 0x4, stream);
  out += block;
  put_frame_header(out, 5, 0x0, 0x1, stream);
  out.append(5, '\0');
  return out;
}

// ---- connections
enum Failure { kConnect, kEof, kReset, kGoaway, kStatus, kReply, kProtocol, kTimeout, kSend, kFailureKinds };
const char* const kFailureNames[kFailureKinds] = {"connect", "eof",   "rst_stream", "goaway", "status",
                                                  "reply",   "protocol", "timeout", "send"};

// user_data: (slot << 3 | op) for a connection's operations, (buffer pointer | kSendOp) for
// sends (malloc'd, so 8-aligned), kStdinOp for the control channel.
enum Op : uint64_t { kConnectOp = 1, kFirstSendOp = 2, kRecvOp = 3, kSendOp = 4, kStdinOp = 5 };

struct SendBuf {
  uint32_t slot;
  uint32_t len;
  char data[];
};

struct Conn {
  enum State : uint8_t { kUnused, kSetup, kReady, kDead } state = kUnused;
  bool recv_armed = false;
  bool in_call = false;      // a call is waiting for its trailers
  bool status_200 = false;
  bool block_ends_stream = false;
  uint8_t blocks = 0;        // header blocks finished on the current stream
  int8_t grpc_status = -1;
  int fd = -1;
  uint32_t stream = 0;       // the current (or last) call's stream
  uint32_t data_bytes = 0;   // DATA on the current stream
  uint32_t unacked = 0;      // DATA bytes not yet given back with a connection WINDOW_UPDATE
  uint64_t started = 0;      // connect (setup) or send (active call) time
  nghttp2_hd_inflater* inflater = nullptr;
  std::string* partial = nullptr;  // a frame split across reads, until it completes
};

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int conns = 1000;
  int inflight = 512;   // connections in setup at once during the ramp
  int sources = 16;
  double timeout = 10;  // setup, and each active call
  bool literal = false;  // --hpack literal
};

constexpr unsigned kBufCount = 4096;  // provided buffers (4 KiB each), shared by every connection
constexpr unsigned kBufSize = 4096;
constexpr uint32_t kWindowRefill = 32768;

class Holder {
 public:
  explicit Holder(const Options& o)
      : opt_(o), conns_(o.conns), authority_(o.host + ":" + std::to_string(o.port)) {
    first_block_ = header_block(true, o.literal, authority_, "/grpc.testing.TestService/EmptyCall");
    next_block_ = header_block(false, o.literal, authority_, "/grpc.testing.TestService/EmptyCall");
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 65536;
    if (int r = io_uring_queue_init_params(4096, &ring_, &p); r != 0) {
      std::fprintf(stderr, "hold-client: io_uring_queue_init: %s\n", std::strerror(-r));
      std::exit(1);
    }
    // liburing 2.3 has no io_uring_setup_buf_ring: map and register the ring by hand.
    void* mem = mmap(nullptr, sizeof(io_uring_buf) * kBufCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (mem == MAP_FAILED) {
      std::perror("hold-client: mmap");
      std::exit(1);
    }
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = kBufCount;
    reg.bgid = 0;
    if (int r = io_uring_register_buf_ring(&ring_, &reg, 0); r != 0) {
      std::fprintf(stderr, "hold-client: io_uring_register_buf_ring: %s\n", std::strerror(-r));
      std::exit(1);
    }
    io_uring_buf_ring_init(br_);
    bufs_ = static_cast<char*>(std::malloc(size_t{kBufCount} * kBufSize));
    for (unsigned i = 0; i < kBufCount; ++i)
      io_uring_buf_ring_add(br_, bufs_ + size_t{i} * kBufSize, kBufSize, i, io_uring_buf_ring_mask(kBufCount), i);
    io_uring_buf_ring_advance(br_, kBufCount);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(o.port));
    inet_pton(AF_INET, o.host.c_str(), &addr_.sin_addr);
  }

  void run() {
    ramp_start_ = now_ns();
    arm_stdin();
    uint64_t next_scan = ramp_start_;
    while (!quit_) {
      while (opened_ < opt_.conns && setting_up_ < opt_.inflight) open(conns_[opened_++]);
      __kernel_timespec ts{0, active_.empty() ? 50000000 : 1000000};
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        on_completion(cqe->user_data, cqe->res, cqe->flags);
      }
      io_uring_cq_advance(&ring_, seen);
      uint64_t t = now_ns();
      if (!ramp_reported_ && opened_ == opt_.conns && setting_up_ == 0) report_ramp(t);
      if (!active_.empty()) issue_calls(t);
      if (t >= next_scan) {
        next_scan = t + 200000000ull;
        scan_timeouts(t);
      }
    }
    print_status("quit");
  }

 private:
  // ---- ring plumbing
  io_uring_sqe* sqe() {
    io_uring_sqe* e = io_uring_get_sqe(&ring_);
    if (!e) {
      io_uring_submit(&ring_);
      e = io_uring_get_sqe(&ring_);
    }
    return e;
  }
  uint64_t tag(const Conn& c, Op op) const { return static_cast<uint64_t>(&c - conns_.data()) << 3 | op; }

  void arm_stdin() {
    io_uring_sqe* e = sqe();
    io_uring_prep_read(e, 0, cmd_ + cmd_len_, sizeof cmd_ - 1 - cmd_len_, -1);
    io_uring_sqe_set_data64(e, kStdinOp);
  }

  void send(Conn& c, const std::string& bytes) {
    auto* b = static_cast<SendBuf*>(std::malloc(sizeof(SendBuf) + bytes.size()));
    b->slot = static_cast<uint32_t>(&c - conns_.data());
    b->len = static_cast<uint32_t>(bytes.size());
    std::memcpy(b->data, bytes.data(), bytes.size());
    io_uring_sqe* e = sqe();
    io_uring_prep_send(e, c.fd, b->data, b->len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(e, reinterpret_cast<uint64_t>(b) | kSendOp);
  }

  void arm_recv(Conn& c) {
    io_uring_sqe* e = sqe();
    io_uring_prep_recv_multishot(e, c.fd, nullptr, 0, 0);
    e->flags |= IOSQE_BUFFER_SELECT;
    e->buf_group = 0;
    io_uring_sqe_set_data64(e, tag(c, kRecvOp));
    c.recv_armed = true;
  }

  // ---- setup
  void open(Conn& c) {
    c.state = Conn::kSetup;
    ++setting_up_;
    c.started = now_ns();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return setup_failed(c, kConnect, errno);
    c.fd = fd;
    int one = 1;
    // 100,000 connections to one port need more than one source address: each has its own
    // ephemeral range (32768-60999 here), picked at connect (IP_BIND_ADDRESS_NO_PORT).
    if (opt_.sources > 1) {
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(0x7f000001u + next_source_++ % opt_.sources);
      if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) return setup_failed(c, kConnect, errno);
    }
    // Every write is a whole request or ACK: send it now, not after the peer's ACK.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (preface_.empty()) {
      preface_ = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
      put_frame_header(preface_, 0, 0x4, 0, 0);  // SETTINGS, defaults
      preface_ += request(first_block_, 1);
    }
    io_uring_sqe* e = sqe();
    io_uring_prep_connect(e, fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
    e->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(e, tag(c, kConnectOp));
    e = sqe();
    io_uring_prep_send(e, fd, preface_.data(), preface_.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(e, tag(c, kFirstSendOp));
    c.stream = 1;
    c.in_call = true;
    c.blocks = 0;
    c.data_bytes = 0;
  }

  void setup_failed(Conn& c, Failure f, int err) {
    if (c.state != Conn::kSetup) return;
    if (err && !first_errno_) first_errno_ = err;
    ++setup_failed_[f];
    --setting_up_;
    kill(c);
  }

  // A connection that was ready and is gone (the server closed it, or broke the protocol).
  void lost(Conn& c, Failure f) {
    if (c.state == Conn::kSetup) return setup_failed(c, f, 0);
    if (c.state != Conn::kReady) return;
    ++lost_[f];
    --ready_;
    if (c.in_call) ++call_failed_[f];
    kill(c);
  }

  void kill(Conn& c) {
    c.state = Conn::kDead;
    c.in_call = false;
    if (c.fd >= 0) {
      ::shutdown(c.fd, SHUT_RDWR);  // ends the multishot recv; the fd is closed when it has
      if (!c.recv_armed) close_fd(c);
    }
  }

  void close_fd(Conn& c) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    if (c.inflater) nghttp2_hd_inflate_del(c.inflater);
    c.inflater = nullptr;
    delete c.partial;
    c.partial = nullptr;
  }

  // ---- completions
  void on_completion(uint64_t ud, int res, uint32_t flags) {
    Op op = static_cast<Op>(ud & 7);
    if (op == kStdinOp) return on_stdin(res);
    if (op == kSendOp) {
      auto* b = reinterpret_cast<SendBuf*>(ud & ~uint64_t{7});
      Conn& c = conns_[b->slot];
      if (res != static_cast<int>(b->len)) lost(c, kSend);
      std::free(b);
      return;
    }
    Conn& c = conns_[ud >> 3];
    switch (op) {
      case kConnectOp:
        if (res < 0) setup_failed(c, kConnect, -res);
        return;
      case kFirstSendOp:
        if (res == -ECANCELED) return;  // the connect failed and said so
        if (res != static_cast<int>(preface_.size())) return setup_failed(c, kConnect, res < 0 ? -res : 0);
        if (c.state == Conn::kSetup) arm_recv(c);
        return;
      case kRecvOp:
        return on_recv(c, res, flags);
      default:
        return;
    }
  }

  void on_recv(Conn& c, int res, uint32_t flags) {
    bool more = flags & IORING_CQE_F_MORE;
    if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
      unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
      if (c.state == Conn::kSetup || c.state == Conn::kReady) on_bytes(c, bufs_ + size_t{id} * kBufSize, res);
      io_uring_buf_ring_add(br_, bufs_ + size_t{id} * kBufSize, kBufSize, id, io_uring_buf_ring_mask(kBufCount), 0);
      io_uring_buf_ring_advance(br_, 1);
    }
    if (more) return;
    c.recv_armed = false;
    if (c.state == Conn::kDead) return close_fd(c);
    if (res == -ENOBUFS) {  // every buffer was taken at once: read again
      ++enobufs_;
      return arm_recv(c);
    }
    if (res > 0) return arm_recv(c);  // the kernel ended the multishot with data in hand
    lost(c, res == 0 ? kEof : kReset);
    if (!c.recv_armed) close_fd(c);
  }

  void on_bytes(Conn& c, const char* data, size_t n) {
    std::string reply;
    const unsigned char* p;
    size_t len;
    if (c.partial) {
      c.partial->append(data, n);
      p = reinterpret_cast<const unsigned char*>(c.partial->data());
      len = c.partial->size();
    } else {
      p = reinterpret_cast<const unsigned char*>(data);
      len = n;
    }
    size_t off = 0;
    int verdict = -2;
    while (verdict == -2 && len - off >= 9) {
      const unsigned char* h = p + off;
      size_t flen = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      if (flen > (1u << 20)) {
        verdict = kProtocol;
        break;
      }
      if (len - off < flen + 9) break;
      verdict = on_frame(c, h[3], h[4], ((h[5] & 0x7fu) << 24) | (h[6] << 16) | (h[7] << 8) | h[8], h + 9, flen,
                         reply);
      off += 9 + flen;
    }
    if (verdict == -2 || verdict == -1) {
      if (off < len) {
        std::string rest(reinterpret_cast<const char*>(p + off), len - off);
        if (!c.partial) c.partial = new std::string;
        c.partial->swap(rest);
      } else if (c.partial) {
        delete c.partial;
        c.partial = nullptr;
      }
    }
    if (!reply.empty() && (c.state == Conn::kSetup || c.state == Conn::kReady)) send(c, reply);
    if (verdict >= 0) lost(c, static_cast<Failure>(verdict));
  }

  // Returns -2 to go on, or a Failure that ends the connection. A finished call is handled
  // here (call_done), so the loop goes on to later frames of the same read.
  int on_frame(Conn& c, uint8_t type, uint8_t flags, uint32_t stream, const unsigned char* p, size_t len,
               std::string& reply) {
    switch (type) {
      case 0x0: {  // DATA
        size_t pad = (flags & 0x8) && len ? p[0] + 1 : 0;
        c.unacked += static_cast<uint32_t>(len);
        if (c.unacked >= kWindowRefill) {  // give the connection window back (stream windows: one call each)
          unsigned char w[4] = {static_cast<unsigned char>(c.unacked >> 24), static_cast<unsigned char>(c.unacked >> 16),
                                static_cast<unsigned char>(c.unacked >> 8), static_cast<unsigned char>(c.unacked)};
          put_frame_header(reply, 4, 0x8, 0, 0);
          reply.append(reinterpret_cast<const char*>(w), 4);
          c.unacked = 0;
        }
        if (stream == c.stream && c.in_call) {
          c.data_bytes += static_cast<uint32_t>(len - std::min(pad, len));
          if (flags & 0x1) return call_done(c, kReply);  // the stream must end with trailers
        }
        return -2;
      }
      case 0x1: {  // HEADERS
        size_t skip = 0, pad = 0;
        if (flags & 0x8) {
          if (!len) return kProtocol;
          pad = p[0];
          skip = 1;
        }
        if (flags & 0x20) skip += 5;
        if (skip + pad > len) return kProtocol;
        c.block_ends_stream = flags & 0x1;
        return inflate(c, stream, p + skip, len - skip - pad, flags & 0x4);
      }
      case 0x9:  // CONTINUATION
        return inflate(c, stream, p, len, flags & 0x4);
      case 0x3:  // RST_STREAM
        return stream == c.stream && c.in_call ? call_done(c, kReset) : -2;
      case 0x4:  // SETTINGS
        if (!(flags & 0x1)) reply.append("\0\0\0\x04\x01\0\0\0\0", 9);
        return -2;
      case 0x6:  // PING
        if (!(flags & 0x1) && len == 8) {
          reply.append("\0\0\x08\x06\x01\0\0\0\0", 9);
          reply.append(reinterpret_cast<const char*>(p), 8);
          ++pings_;
        }
        return -2;
      case 0x7:  // GOAWAY: the server wants the connection gone; it counts as lost
        ++goaways_;
        return kGoaway;
      default:  // WINDOW_UPDATE, PRIORITY, unknown
        return -2;
    }
  }

  int inflate(Conn& c, uint32_t stream, const unsigned char* p, size_t len, bool end_headers) {
    if (!c.inflater && nghttp2_hd_inflate_new(&c.inflater) != 0) return kProtocol;
    bool mine = stream == c.stream && c.in_call;
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      ssize_t r = nghttp2_hd_inflate_hd2(c.inflater, &nv, &flags, p, len, end_headers);
      if (r < 0) return kProtocol;
      p += r;
      len -= static_cast<size_t>(r);
      if ((flags & NGHTTP2_HD_INFLATE_EMIT) && mine) {
        std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
        std::string_view value(reinterpret_cast<const char*>(nv.value), nv.valuelen);
        if (name == ":status") c.status_200 = value == "200";
        if (name == "grpc-status") c.grpc_status = value.size() == 1 && value[0] == '0' ? 0 : 1;
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(c.inflater);
        break;
      }
      if (len == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT)) break;
    }
    if (!end_headers || !mine) return -2;
    ++c.blocks;
    if (!c.status_200) return call_done(c, kStatus);
    if (!c.block_ends_stream) return c.blocks == 1 ? -2 : call_done(c, kProtocol);
    if (c.grpc_status != 0) return call_done(c, kStatus);
    return call_done(c, c.data_bytes == 5 ? -1 : kReply);  // EmptyCall answers one empty message
  }

  // The current call ended: -1 well, else how it failed. A failed setup call ends the
  // connection; a failed active call is counted and the connection stays.
  int call_done(Conn& c, int outcome) {
    c.in_call = false;
    c.blocks = 0;
    c.status_200 = false;
    c.grpc_status = -1;
    c.data_bytes = 0;
    uint64_t t = now_ns();
    if (c.state == Conn::kSetup) {
      if (outcome != -1) return outcome;
      c.state = Conn::kReady;
      --setting_up_;
      ++ready_;
      setup_lat_.push_back(static_cast<uint32_t>(std::min<uint64_t>((t - c.started) / 1000, UINT32_MAX)));
      return -2;
    }
    if (outcome == -1) {
      ++calls_ok_;
      call_lat_.push_back(static_cast<uint32_t>(std::min<uint64_t>((t - c.started) / 1000, UINT32_MAX)));
    } else {
      ++call_failed_[outcome];
    }
    return -2;
  }

  // ---- active phase: calls at a fixed total rate, each connection in turn
  void issue_calls(uint64_t t) {
    uint64_t due = static_cast<uint64_t>((t - active_start_) * 1e-9 * rate_);
    while (issued_ < due) {
      Conn& c = *active_[issued_++ % active_.size()];
      if (c.state != Conn::kReady) {
        ++skipped_dead_;
        continue;
      }
      if (c.in_call) {  // its previous call is still out: the schedule slips, counted
        ++skipped_busy_;
        continue;
      }
      c.stream += 2;
      c.in_call = true;
      c.started = t;
      ++calls_sent_;
      send(c, request(next_block_, c.stream));
    }
  }

  void scan_timeouts(uint64_t t) {
    uint64_t limit = static_cast<uint64_t>(opt_.timeout * 1e9);
    for (auto& c : conns_) {
      if (!c.in_call || t - c.started <= limit) continue;
      if (c.state == Conn::kSetup) {
        setup_failed(c, kTimeout, 0);
      } else if (c.state == Conn::kReady) {
        ++call_failed_[kTimeout];
        c.in_call = false;  // a late reply is on an older stream and is ignored
      }
    }
  }

  // ---- control
  void on_stdin(int res) {
    if (res <= 0) {
      quit_ = true;
      return;
    }
    cmd_len_ += res;
    cmd_[cmd_len_] = 0;
    char* nl;
    while ((nl = static_cast<char*>(std::memchr(cmd_, '\n', cmd_len_)))) {
      *nl = 0;
      command(cmd_);
      size_t used = nl + 1 - cmd_;
      std::memmove(cmd_, nl + 1, cmd_len_ - used);
      cmd_len_ -= used;
    }
    if (cmd_len_ >= sizeof cmd_ - 1) cmd_len_ = 0;
    if (!quit_) arm_stdin();
  }

  void command(const char* line) {
    unsigned k = 0;
    double rate = 0;
    if (std::sscanf(line, "active %u %lf", &k, &rate) == 2 && k > 0 && rate > 0) {
      active_.clear();
      for (auto& c : conns_)
        if (c.state == Conn::kReady && active_.size() < k) active_.push_back(&c);
      rate_ = rate;
      active_start_ = now_ns();
      issued_ = calls_sent_ = calls_ok_ = skipped_busy_ = skipped_dead_ = 0;
      std::fill(std::begin(call_failed_), std::end(call_failed_), 0);
      call_lat_.clear();
      std::printf("hold-client active conns=%zu rate=%.1f\n", active_.size(), rate);
      std::fflush(stdout);
    } else if (std::strcmp(line, "idle") == 0) {
      print_status("active-done");
      active_.clear();
    } else if (std::strcmp(line, "report") == 0) {
      print_status("report");
    } else if (std::strcmp(line, "quit") == 0) {
      quit_ = true;
    } else {
      std::fprintf(stderr, "hold-client: unknown command '%s'\n", line);
    }
  }

  static double pct(std::vector<uint32_t>& v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()));
    return v[k] / 1e3;
  }

  static std::string kinds(const uint64_t (&counts)[kFailureKinds]) {
    std::string s;
    for (int k = 0; k < kFailureKinds; ++k)
      if (counts[k]) s += std::string(s.empty() ? "" : ",") + kFailureNames[k] + ":" + std::to_string(counts[k]);
    return s.empty() ? "none" : s;
  }

  static uint64_t sum(const uint64_t (&counts)[kFailureKinds]) {
    uint64_t n = 0;
    for (auto v : counts) n += v;
    return n;
  }

  void report_ramp(uint64_t t) {
    ramp_reported_ = true;
    double s = (t - ramp_start_) / 1e9;
    std::printf("hold-client ramp conns=%d ready=%llu failed=%llu failure_kinds=%s first_errno=%s seconds=%.3f "
                "conn_per_s=%.1f setup_p50_ms=%.2f setup_p99_ms=%.2f setup_max_ms=%.2f client_cpu_s=%.3f\n",
                opt_.conns, static_cast<unsigned long long>(ready_),
                static_cast<unsigned long long>(sum(setup_failed_)), kinds(setup_failed_).c_str(),
                first_errno_ ? std::strerror(first_errno_) : "none", s, ready_ / s, pct(setup_lat_, 50),
                pct(setup_lat_, 99), pct(setup_lat_, 100), cpu_s());
    std::fflush(stdout);
  }

  void print_status(const char* what) {
    double s = active_start_ ? (now_ns() - active_start_) / 1e9 : 0;
    std::printf("hold-client %s ready=%llu lost=%llu lost_kinds=%s goaways=%llu pings=%llu active=%zu "
                "seconds=%.3f calls_sent=%llu calls_ok=%llu calls_failed=%llu call_failure_kinds=%s "
                "skipped_busy=%llu skipped_dead=%llu rpc_per_s=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
                "enobufs=%llu client_cpu_s=%.3f\n",
                what, static_cast<unsigned long long>(ready_), static_cast<unsigned long long>(sum(lost_)),
                kinds(lost_).c_str(), static_cast<unsigned long long>(goaways_),
                static_cast<unsigned long long>(pings_), active_.size(), s,
                static_cast<unsigned long long>(calls_sent_), static_cast<unsigned long long>(calls_ok_),
                static_cast<unsigned long long>(sum(call_failed_)), kinds(call_failed_).c_str(),
                static_cast<unsigned long long>(skipped_busy_), static_cast<unsigned long long>(skipped_dead_),
                s > 0 ? calls_ok_ / s : 0.0, pct(call_lat_, 50), pct(call_lat_, 99), pct(call_lat_, 99.9),
                static_cast<unsigned long long>(enobufs_), cpu_s());
    std::fflush(stdout);
  }

  static double cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }

  Options opt_;
  std::vector<Conn> conns_;
  std::string authority_, first_block_, next_block_, preface_;
  io_uring ring_{};
  io_uring_buf_ring* br_ = nullptr;
  char* bufs_ = nullptr;
  sockaddr_in addr_{};
  uint32_t next_source_ = 0;
  int opened_ = 0, setting_up_ = 0;
  uint64_t ready_ = 0;
  uint64_t ramp_start_ = 0;
  bool ramp_reported_ = false, quit_ = false;
  int first_errno_ = 0;
  uint64_t setup_failed_[kFailureKinds] = {}, lost_[kFailureKinds] = {}, call_failed_[kFailureKinds] = {};
  uint64_t goaways_ = 0, pings_ = 0, enobufs_ = 0;
  std::vector<uint32_t> setup_lat_, call_lat_;  // µs
  // active phase
  std::vector<Conn*> active_;
  double rate_ = 0;  // calls per second, all active connections together
  uint64_t active_start_ = 0, issued_ = 0, calls_sent_ = 0, calls_ok_ = 0, skipped_busy_ = 0, skipped_dead_ = 0;
  char cmd_[256];
  size_t cmd_len_ = 0;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: hold-client --port N [--host 127.0.0.1] [--conns N] [--inflight C] [--sources S]\n"
               "                   [--timeout SECONDS] [--hpack index|literal]\n"
               "  opens N h2c connections (C in setup at once, over source addresses 127.0.0.1..S),\n"
               "  one checked EmptyCall each, then holds them; commands on stdin:\n"
               "  'active K R' (K connections, R calls/s in all, in turn), 'idle', 'report', 'quit'\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    std::string v = argv[++i];
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = std::atoi(v.c_str());
    else if (a == "--conns") o.conns = std::atoi(v.c_str());
    else if (a == "--inflight") o.inflight = std::atoi(v.c_str());
    else if (a == "--sources") o.sources = std::atoi(v.c_str());
    else if (a == "--timeout") o.timeout = std::atof(v.c_str());
    else if (a == "--hpack" && (v == "index" || v == "literal")) o.literal = v == "literal";
    else usage();
  }
  if (o.port <= 0 || o.conns < 1 || o.inflight < 1 || o.sources < 1 || o.timeout <= 0) usage();
  if (o.host.rfind("127.", 0) != 0) o.sources = 1;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < static_cast<rlim_t>(o.conns) + 64)
    std::fprintf(stderr, "hold-client: RLIMIT_NOFILE %llu is below %d connections; the rest fail with EMFILE\n",
                 static_cast<unsigned long long>(rl.rlim_cur), o.conns);
  Holder h(o);
  h.run();
  return 0;
}

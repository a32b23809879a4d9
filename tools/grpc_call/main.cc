// grpc-call: calls a gRPC method with JSON requests, lists and describes services, all
// through the server's reflection service (man grpc-call(1)). A tool over gRPC C++'s client
// and protobuf's DescriptorPool and JSON mapping; it does not use liburingrpc.
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "generic_call.h"
#include "reflection_database.h"

namespace {

namespace pb = google::protobuf;
using grpccall::CallOptions;

constexpr int kExitUsage = 2;     // bad command line
constexpr int kExitInput = 3;     // bad JSON, unknown service/method/symbol, unreadable file
constexpr int kExitStatus = 64;   // + the gRPC status code of a failed RPC

constexpr const char* kUsage =
    "usage: grpc-call [options] ADDRESS list [SERVICE]\n"
    "       grpc-call [options] ADDRESS describe SYMBOL\n"
    "       grpc-call [options] ADDRESS SERVICE/METHOD [JSON... | -]\n"
    "options: --plaintext (default) | --tls | --cacert FILE, --servername NAME,\n"
    "         -H 'key: value' (repeatable), --deadline SECONDS, --emit-defaults,\n"
    "         -v (the response's headers and trailers on stderr)\n"
    "exit: 0 OK, 2 usage, 3 bad input or unknown name, 64+code when an RPC fails\n";

// A failure named to the user: message on stderr, then this exit code.
struct Failure {
  int exit_code;
  std::string message;
};

struct Args {
  bool tls = false;
  std::string cacert, servername;
  CallOptions call;
  bool emit_defaults = false;
  bool verbose = false;
  std::vector<std::string> positional;
};

Args parse_args(int argc, char** argv) {
  Args a;
  auto value_of = [&](int& i, const std::string& flag) {
    if (i + 1 >= argc) throw Failure{kExitUsage, flag + " needs a value"};
    return std::string(argv[++i]);
  };
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg == "-" || arg.empty() || arg[0] != '-') {
      a.positional.push_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--plaintext") {
      a.tls = false;
    } else if (arg == "--tls") {
      a.tls = true;
    } else if (arg == "--cacert") {
      a.cacert = value_of(i, arg);
      a.tls = true;
    } else if (arg == "--servername") {
      a.servername = value_of(i, arg);
    } else if (arg == "-v" || arg == "--verbose") {
      a.verbose = true;
    } else if (arg == "--emit-defaults") {
      a.emit_defaults = true;
    } else if (arg == "-H") {
      std::string header = value_of(i, arg);
      auto colon = header.find(':');
      if (colon == std::string::npos || colon == 0) throw Failure{kExitUsage, "-H wants 'key: value', not '" + header + "'"};
      std::string key = header.substr(0, colon);
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t value_at = header.find_first_not_of(' ', colon + 1);
      std::string value = value_at == std::string::npos ? "" : header.substr(value_at);
      a.call.metadata.emplace_back(key, value);
    } else if (arg == "--deadline") {
      std::string text = value_of(i, arg);
      char* end = nullptr;
      errno = 0;
      double seconds = std::strtod(text.c_str(), &end);
      if (errno || end == text.c_str() || *end || !std::isfinite(seconds) || seconds <= 0 || seconds > 1e6) {
        throw Failure{kExitUsage, "--deadline wants a positive number of seconds, not '" + text + "'"};
      }
      a.call.deadline = std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(seconds));
    } else {
      throw Failure{kExitUsage, "unknown option " + arg};
    }
  }
  if (a.positional.size() < 2) throw Failure{kExitUsage, "want an ADDRESS and a command or SERVICE/METHOD"};
  return a;
}

std::shared_ptr<grpc::Channel> make_channel(const Args& a) {
  grpc::ChannelArguments args;
  if (!a.servername.empty()) args.SetSslTargetNameOverride(a.servername);
  if (!a.tls) return grpc::CreateCustomChannel(a.positional[0], grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  if (!a.cacert.empty()) {
    std::ifstream in(a.cacert);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in || pem.str().empty()) throw Failure{kExitInput, "cannot read the CA file " + a.cacert};
    ssl.pem_root_certs = pem.str();
  }
  return grpc::CreateCustomChannel(a.positional[0], grpc::SslCredentials(ssl), args);
}

Failure rpc_failure(const grpc::Status& status) {
  static const char* const kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                       "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                       "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  int code = status.error_code();
  std::string name = code >= 0 && code <= 16 ? kNames[code] : "CODE_" + std::to_string(code);
  return Failure{kExitStatus + (code >= 0 && code <= 16 ? code : 2), name + " " + status.error_message()};
}

// Reflection found nothing: the RPC failed (its status) or the name is unknown.
Failure not_found(const grpccall::ReflectionDatabase& db, const std::string& what) {
  if (db.failure()) {
    Failure f = rpc_failure(*db.failure());
    f.message = "server reflection failed: " + f.message;
    return f;
  }
  return Failure{kExitInput, what};
}

int list(grpccall::ReflectionDatabase& db, pb::DescriptorPool& pool, const Args& a) {
  if (a.positional.size() > 3) throw Failure{kExitUsage, "list takes at most one SERVICE"};
  if (a.positional.size() == 3) {
    const pb::ServiceDescriptor* service = pool.FindServiceByName(a.positional[2]);
    if (!service) throw not_found(db, "no service " + a.positional[2] + " on the server");
    for (int i = 0; i < service->method_count(); ++i) std::printf("%s\n", service->method(i)->full_name().c_str());
    return 0;
  }
  auto names = db.list_services();
  if (!names) throw not_found(db, "");
  for (const std::string& name : *names) std::printf("%s\n", name.c_str());
  return 0;
}

int describe(grpccall::ReflectionDatabase& db, pb::DescriptorPool& pool, const Args& a) {
  if (a.positional.size() != 3) throw Failure{kExitUsage, "describe takes one SYMBOL"};
  std::string symbol = a.positional[2];
  if (!symbol.empty() && symbol[0] == '.') symbol.erase(0, 1);
  for (char& c : symbol) c = c == '/' ? '.' : c;  // Service/Method names the method
  std::string kind, text;
  if (auto* s = pool.FindServiceByName(symbol)) kind = "a service", text = s->DebugString();
  else if (auto* m = pool.FindMethodByName(symbol)) kind = "a method", text = m->DebugString();
  else if (auto* t = pool.FindMessageTypeByName(symbol)) kind = "a message", text = t->DebugString();
  else if (auto* e = pool.FindEnumTypeByName(symbol)) kind = "an enum", text = e->DebugString();
  else if (auto* f = pool.FindFieldByName(symbol)) kind = "a field", text = f->DebugString();
  else if (auto* v = pool.FindEnumValueByName(symbol)) kind = "an enum value", text = v->DebugString();
  else throw not_found(db, "no symbol " + symbol + " on the server");
  std::printf("%s is %s:\n%s", symbol.c_str(), kind.c_str(), text.c_str());
  return 0;
}

// The request messages: the JSON arguments, or JSON lines on stdin for "-".
std::vector<std::string> request_texts(const Args& a) {
  std::vector<std::string> out;
  for (size_t i = 2; i < a.positional.size(); ++i) {
    if (a.positional[i] != "-") {
      out.push_back(a.positional[i]);
      continue;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
    }
  }
  return out;
}

int call(grpccall::ReflectionDatabase& db, pb::DescriptorPool& pool, const std::shared_ptr<grpc::Channel>& channel,
         const Args& a) {
  std::string name = a.positional[1];
  auto slash = name.rfind('/');
  if (slash == std::string::npos) slash = name.rfind('.');
  if (slash == std::string::npos || slash == 0 || slash + 1 == name.size()) {
    throw Failure{kExitUsage, "'" + name + "' is neither list, describe nor SERVICE/METHOD"};
  }
  std::string service_name = name.substr(0, slash), method_name = name.substr(slash + 1);
  const pb::ServiceDescriptor* service = pool.FindServiceByName(service_name);
  if (!service) throw not_found(db, "no service " + service_name + " on the server");
  const pb::MethodDescriptor* method = service->FindMethodByName(method_name);
  if (!method) throw Failure{kExitInput, "service " + service_name + " has no method " + method_name};

  std::vector<std::string> texts = request_texts(a);
  if (texts.empty() && !method->client_streaming()) texts.push_back("{}");
  if (texts.size() > 1 && !method->client_streaming()) {
    throw Failure{kExitUsage, method->full_name() + " takes one request, not " + std::to_string(texts.size())};
  }
  pb::DynamicMessageFactory factory(&pool);
  std::vector<std::string> requests;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::unique_ptr<pb::Message> m(factory.GetPrototype(method->input_type())->New());
    auto status = pb::util::JsonStringToMessage(texts[i], m.get());
    if (!status.ok()) {
      throw Failure{kExitInput, "request " + std::to_string(i + 1) + " is not a " + method->input_type()->full_name() +
                                    " in JSON: " + std::string(status.message())};
    }
    requests.push_back(m->SerializeAsString());
  }

  // Requests all go first, then responses are printed as they come: a bidi call whose
  // server answers each request works; one that must be answered before it reads more does not.
  grpccall::GenericCall rpc(channel, "/" + service->full_name() + "/" + method->name(), a.call);
  for (const std::string& r : requests) {
    if (!rpc.write(r)) break;
  }
  rpc.writes_done();
  pb::util::JsonPrintOptions print;
  print.add_whitespace = true;
  print.always_print_primitive_fields = a.emit_defaults;
  while (auto bytes = rpc.read()) {
    std::unique_ptr<pb::Message> m(factory.GetPrototype(method->output_type())->New());
    std::string json;
    if (!m->ParseFromString(*bytes) || !pb::util::MessageToJsonString(*m, &json, print).ok()) {
      throw Failure{kExitStatus + 13, "INTERNAL a response does not parse as " + method->output_type()->full_name()};
    }
    std::fputs(json.c_str(), stdout);
    std::fflush(stdout);  // each response of a stream as it arrives
  }
  grpc::Status status = rpc.finish();
  if (a.verbose) {
    auto print = [](const char* what, const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
      for (const auto& [key, value] : metadata) {
        std::fprintf(stderr, "%s %.*s: %.*s\n", what, static_cast<int>(key.size()), key.data(),
                     static_cast<int>(value.size()), value.data());
      }
    };
    print("header", rpc.context().GetServerInitialMetadata());
    print("trailer", rpc.context().GetServerTrailingMetadata());
  }
  if (!status.ok()) throw rpc_failure(status);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse_args(argc, argv);
    std::shared_ptr<grpc::Channel> channel = make_channel(a);
    grpccall::ReflectionDatabase db(channel, a.call);
    pb::DescriptorPool pool(&db);
    const std::string& command = a.positional[1];
    if (command == "list") return list(db, pool, a);
    if (command == "describe") return describe(db, pool, a);
    return call(db, pool, channel, a);
  } catch (const Failure& f) {
    std::fprintf(stderr, "%s%s\n", f.exit_code == kExitUsage || f.exit_code == kExitInput ? "grpc-call: " : "",
                 f.message.c_str());
    if (f.exit_code == kExitUsage) std::fputs(kUsage, stderr);
    return f.exit_code;
  }
}

// Naming rules of protoc-gen-uringrpc (see names.h). Collisions are resolved by appending
// '_', as protobuf does for keywords, so a user can predict the name from the .proto alone.
#include "codegen/names.h"

#include <google/protobuf/compiler/cpp/names.h>

#include <algorithm>
#include <set>
#include <string_view>

namespace uringrpc::codegen {

namespace gp = google::protobuf;

const char* const kReservedNames[11] = {"register_methods", "file_descriptor", "service_descriptor",
                                        "uringrpc", "std", "google", "Task", "Stream", "Reader",
                                        "ServerContext", "Status"};

namespace {

constexpr std::string_view kKeywords[] = {
    "alignas",   "alignof",      "and",          "and_eq",       "asm",         "auto",
    "bitand",    "bitor",        "bool",         "break",        "case",        "catch",
    "char",      "char8_t",      "char16_t",     "char32_t",     "class",       "compl",
    "concept",   "const",        "consteval",    "constexpr",    "constinit",   "const_cast",
    "continue",  "co_await",     "co_return",    "co_yield",     "decltype",    "default",
    "delete",    "do",           "double",       "dynamic_cast", "else",        "enum",
    "explicit",  "export",       "extern",       "false",        "float",       "for",
    "friend",    "goto",         "if",           "inline",       "int",         "long",
    "mutable",   "namespace",    "new",          "noexcept",     "not",         "not_eq",
    "nullptr",   "operator",     "or",           "or_eq",        "private",     "protected",
    "public",    "register",     "reinterpret_cast", "requires", "return",      "short",
    "signed",    "sizeof",       "static",       "static_assert", "static_cast", "struct",
    "switch",    "template",     "this",         "thread_local", "throw",       "true",
    "try",       "typedef",      "typeid",       "typename",     "union",       "unsigned",
    "using",     "virtual",      "void",         "volatile",     "wchar_t",     "while",
    "xor",       "xor_eq",
};

void collect_enum(const gp::EnumDescriptor* e, bool top_level, std::set<std::string>& taken) {
  taken.insert(gp::compiler::cpp::ClassName(e));
  // Values of a top-level enum are names in the package's namespace too.
  if (top_level) {
    for (int i = 0; i < e->value_count(); ++i) taken.insert(e->value(i)->name());
  }
}

void collect_message(const gp::Descriptor* m, std::set<std::string>& taken) {
  taken.insert(gp::compiler::cpp::ClassName(m));  // "Outer_Inner" for nested messages
  for (int i = 0; i < m->nested_type_count(); ++i) collect_message(m->nested_type(i), taken);
  for (int i = 0; i < m->enum_type_count(); ++i) collect_enum(m->enum_type(i), false, taken);
}

// Names protobuf and grpc_cpp_plugin declare in `package`'s namespace from `file` and from
// its imports (transitively) in the same package.
void collect_package_names(const gp::FileDescriptor* file, const std::string& package,
                           std::set<const gp::FileDescriptor*>& seen, std::set<std::string>& taken) {
  if (!seen.insert(file).second) return;
  if (file->package() == package) {
    for (int i = 0; i < file->message_type_count(); ++i) collect_message(file->message_type(i), taken);
    for (int i = 0; i < file->enum_type_count(); ++i) collect_enum(file->enum_type(i), true, taken);
    for (int i = 0; i < file->service_count(); ++i) taken.insert(file->service(i)->name());
    for (int i = 0; i < file->extension_count(); ++i) taken.insert(file->extension(i)->name());
  }
  for (int i = 0; i < file->dependency_count(); ++i) {
    collect_package_names(file->dependency(i), package, seen, taken);
  }
}

}  // namespace

bool is_cpp_keyword(const std::string& name) {
  return std::find(std::begin(kKeywords), std::end(kKeywords), name) != std::end(kKeywords);
}

std::string package_namespace(const std::string& package) {
  // No keyword mangling: protobuf 3.21 writes "namespace class {" for such a package, so
  // its .pb.h does not compile and neither would anything naming its messages.
  std::string out;
  size_t start = 0;
  while (start < package.size()) {
    size_t dot = package.find('.', start);
    if (dot == std::string::npos) dot = package.size();
    std::string part = package.substr(start, dot - start);
    out += "::" + part;
    start = dot + 1;
  }
  return out;
}

std::string service_class_name(const gp::ServiceDescriptor* service) {
  std::set<std::string> taken;
  std::set<const gp::FileDescriptor*> seen;
  collect_package_names(service->file(), service->file()->package(), seen, taken);
  std::string name = service->name() + "Service";
  while (taken.count(name) != 0) name += "_";
  return name;
}

std::vector<std::string> method_function_names(const gp::ServiceDescriptor* service,
                                               const std::string& class_name) {
  std::set<std::string> taken(std::begin(kReservedNames), std::end(kReservedNames));
  taken.insert(class_name);
  // An rpc keeps its own name whenever it can: reserve every unmangled rpc name first, so
  // rpcs "delete" and "delete_" give delete__ and delete_, not a clash.
  std::set<std::string> own;
  for (int i = 0; i < service->method_count(); ++i) own.insert(service->method(i)->name());
  std::vector<std::string> names;
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string& proto_name = service->method(i)->name();
    std::string name = proto_name;
    bool clashes = is_cpp_keyword(name) || taken.count(name) != 0;
    if (clashes) {
      do {
        name += "_";
      } while (is_cpp_keyword(name) || taken.count(name) != 0 || own.count(name) != 0);
    }
    taken.insert(name);
    names.push_back(name);
  }
  return names;
}

}  // namespace uringrpc::codegen

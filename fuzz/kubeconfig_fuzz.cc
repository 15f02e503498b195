// ro::kube::LoadKubeconfig on arbitrary text (a kubeconfig Secret's value: no base
// directory). It returns a RestConfig or throws ConfigError; a RestConfig keeps the
// documented shape: an http(s) server URL with a host and no trailing slash, and client
// certificate and key both or neither.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "ro/kube/config.h"
#include "ro/kube/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using ro::fuzz::Check;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const ro::kube::RestConfig config = ro::kube::LoadKubeconfig(text);
    const std::string_view server = config.server;
    const std::size_t scheme_end = server.find("://");
    Check(server.rfind("https://", 0) == 0 || server.rfind("http://", 0) == 0,
          "server starts with https:// or http://");
    Check(scheme_end != std::string_view::npos && server.size() > scheme_end + 3,
          "server names a host");
    Check(server.back() != '/', "server has no trailing slash");
    Check(config.client_cert_pem.empty() == config.client_key_pem.empty(),
          "client certificate and key: both or neither");
    Check(!config.default_namespace.empty(), "a default namespace");
  } catch (const ro::kube::ConfigError& e) {
    Check(!e.field().empty(), "ConfigError names a field");
  }
  return 0;
}

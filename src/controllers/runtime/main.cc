// RunControllerMain: the life of a controller binary (see manager.h).
#include <csignal>
#include <curl/curl.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"
#include "ro/runtime/manager.h"
#include "signals.h"

namespace ro::runtime {

namespace {

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// curl_global_init/cleanup for the process (the S3 client and the kube transport use
// libcurl; neither may initialise it once threads exist).
class CurlGlobal {
 public:
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
};

}  // namespace

int RunControllerMain(int argc, char** argv, const ControllerMain& main) {
  FlagSet extra;
  if (main.add_flags) main.add_flags(extra);
  ManagerOptions options;
  try {
    options = ParseFlags(std::vector<std::string>(argv + 1, argv + argc), main.binary_name, extra,
                         GetEnv);
  } catch (const FlagError& e) {
    (e.exit_code() == 0 ? std::cout : std::cerr) << e.what() << std::endl;
    return e.exit_code();
  }

  log::LogOptions log_options;
  log_options.process_id = main.binary_name;
  log_options.level = options.log_level;
  log::Setup(log_options);
  BlockShutdownSignals();  // before any thread exists
  // A peer closing a TLS connection the HTTPS server writes to is an error return, not
  // the death of the process (OpenSSL writes with write(2), not send(MSG_NOSIGNAL)).
  std::signal(SIGPIPE, SIG_IGN);
  const CurlGlobal curl;
  const log::Logger log;

  std::stop_source stop;
  const ShutdownSignalWatcher signals(stop, options.graceful_shutdown_timeout);
  try {
    Manager manager(options);
    main.setup(manager);
    return manager.Run(stop.get_token());
  } catch (const std::exception& e) {
    log.Error("controller failed", {{"error", e.what()}});
    return 1;
  }
}

}  // namespace ro::runtime

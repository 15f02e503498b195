// SIGTERM/SIGINT handling of the controller binaries. Private to the runtime.
#pragma once

#include <chrono>
#include <stop_token>
#include <thread>

namespace ro::runtime {

// Blocks SIGTERM and SIGINT for the calling thread and every thread it creates later.
// Call from main() before any thread exists, so no thread gets them asynchronously.
void BlockShutdownSignals();

// Waits for SIGTERM/SIGINT on its own thread (sigtimedwait). The first signal requests
// `on_signal`'s stop; if the process is still running `grace` later, or a second
// signal arrives, it logs and exits at once with status 1 (as controller-runtime does
// on a second signal). REQUIRES: BlockShutdownSignals() was called.
class ShutdownSignalWatcher {
 public:
  ShutdownSignalWatcher(std::stop_source on_signal, std::chrono::milliseconds grace);
  // Stops watching (normal end of main()).
  ~ShutdownSignalWatcher();
  ShutdownSignalWatcher(const ShutdownSignalWatcher&) = delete;
  ShutdownSignalWatcher& operator=(const ShutdownSignalWatcher&) = delete;

 private:
  void Watch(std::stop_token stop);

  std::stop_source on_signal_;
  const std::chrono::milliseconds grace_;
  std::jthread thread_;  // last: starts after the fields above exist
};

}  // namespace ro::runtime

#include "ro/testenv/wait.h"

#include <string>
#include <thread>

#include "ro/testenv/errors.h"

namespace ro::testenv {

void WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
             std::string_view what, std::chrono::milliseconds poll) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (predicate()) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw WaitTimeout("timed out after " + std::to_string(timeout.count()) + " ms waiting for " +
                        std::string(what));
    }
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace ro::testenv

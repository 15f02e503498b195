#include "ro/testenv/ports.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include "ro/testenv/errors.h"

namespace ro::testenv {
namespace {

// Machine-wide (not under $TMPDIR): every harness process must see the same locks.
constexpr const char* kLockDir = "/tmp/ro-testenv-ports";
// Random probes before giving up; the range has 12000 ports, so running out means
// something else is wrong (e.g. /tmp not writable).
constexpr int kMaxTries = 500;

// True when nothing listens on (or is bound to) 127.0.0.1:port right now.
bool Bindable(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  // Servers set SO_REUSEADDR too, so a port in TIME_WAIT is usable by them.
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

PortLease::PortLease() {
  ::mkdir(kLockDir, 01777);
  ::chmod(kLockDir, 01777);  // shared by every user's harness, like /tmp itself
  std::random_device seed;
  std::mt19937 rng(seed());
  std::uniform_int_distribution<int> pick(kFirstPort, kLastPort - 1);
  for (int i = 0; i < kMaxTries; ++i) {
    auto port = static_cast<std::uint16_t>(pick(rng));
    std::string lock_path = std::string(kLockDir) + "/" + std::to_string(port) + ".lock";
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue;
    }
    if (!Bindable(port)) {
      ::close(fd);
      continue;
    }
    port_ = port;
    lock_fd_ = fd;
    return;
  }
  throw TestEnvError(std::string("no free port on 127.0.0.1 in [20000, 32000) (locks in ") +
                     kLockDir + ")");
}

PortLease::PortLease(PortLease&& other) noexcept : port_(other.port_), lock_fd_(other.lock_fd_) {
  other.lock_fd_ = -1;
}

PortLease::~PortLease() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

}  // namespace ro::testenv

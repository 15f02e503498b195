#include "ro/plugins/zookeeper_client.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <condition_variable>
#include <exception>
#include <future>
#include <iterator>
#include <mutex>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zookeeper/zookeeper.h>

#include "ro/common/base64.h"
#include "ro/common/log.h"

namespace ro::plugins {
namespace {

// Where Get() starts; larger data is fetched again with the exact size from the stat.
// Most znodes (configuration, locks, ids) are far below 16 KiB.
constexpr int kInitialGetBuffer = 16 * 1024;
// A sequential node's name gets a 10-digit counter appended ("-0000000042").
constexpr std::size_t kSequenceSuffix = 10;
// DeleteRecursive passes over a node whose children keep reappearing before giving up
// with ZNOTEMPTY (a writer racing the delete).
constexpr int kDeleteAttempts = 3;

// Routes the C library's log lines into spdlog, all at "debug": with every server down
// the library retries without pause and logs an ERROR per attempt (thousands per
// second), and our callers learn of every failure that matters through typed errors.
// The library formats lines as
// "<time>:<pid>(0x<thread>):ZOO_<LEVEL>@<function>@<line>: <message>\n"; the original
// level is kept in the "zooLevel" field.
void RouteLibraryLogLine(const char* line) {
  static const log::Logger kLogger(nlohmann::json{{"library", "libzookeeper"}});
  if (line == nullptr || !kLogger.Enabled(log::Level::kDebug)) return;
  std::string_view text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);

  nlohmann::json fields = nlohmann::json::object();
  const std::size_t tag = text.find(":ZOO_");
  if (tag != std::string_view::npos) {
    const std::string_view rest = text.substr(tag + 1);
    const std::size_t at1 = rest.find('@');
    const std::size_t at2 = at1 == std::string_view::npos ? at1 : rest.find('@', at1 + 1);
    const std::size_t colon = at2 == std::string_view::npos ? at2 : rest.find(": ", at2);
    if (colon != std::string_view::npos) {
      fields["zooLevel"] = rest.substr(0, at1);
      fields["function"] = rest.substr(at1 + 1, at2 - at1 - 1);
      text = rest.substr(colon + 2);
    }
  }
  kLogger.Debug(text, fields);
}

// The callback handed to the C library: no exception may cross its frames.
void RouteLibraryLog(const char* line) noexcept {
  try {
    RouteLibraryLogLine(line);
  } catch (...) {
    // A log line that cannot be written (out of memory) is dropped.
  }
}

ZooKeeperError::Code CodeFor(int rc) {
  switch (rc) {
    case ZNONODE: return ZooKeeperError::Code::kNoNode;
    case ZNODEEXISTS: return ZooKeeperError::Code::kNodeExists;
    case ZNOTEMPTY: return ZooKeeperError::Code::kNotEmpty;
    case ZBADVERSION: return ZooKeeperError::Code::kBadVersion;
    case ZNOCHILDRENFOREPHEMERALS: return ZooKeeperError::Code::kNoChildrenForEphemerals;
    case ZNOAUTH: return ZooKeeperError::Code::kNoAuth;
    case ZAUTHFAILED: return ZooKeeperError::Code::kAuthFailed;
    case ZCONNECTIONLOSS: return ZooKeeperError::Code::kConnectionLoss;
    case ZOPERATIONTIMEOUT: return ZooKeeperError::Code::kOperationTimeout;
    // ZINVALIDSTATE: the handle is expired (or failed auth, refined by the caller).
    case ZSESSIONEXPIRED:
    case ZINVALIDSTATE: return ZooKeeperError::Code::kSessionExpired;
    case ZBADARGUMENTS: return ZooKeeperError::Code::kBadArguments;
    default: return ZooKeeperError::Code::kOther;
  }
}

ZooKeeperStat ToStat(const Stat& s) {
  ZooKeeperStat out;
  out.czxid = s.czxid;
  out.mzxid = s.mzxid;
  out.pzxid = s.pzxid;
  out.ctime_ms = s.ctime;
  out.mtime_ms = s.mtime;
  out.version = s.version;
  out.cversion = s.cversion;
  out.aversion = s.aversion;
  out.ephemeral_owner = s.ephemeralOwner;
  out.data_length = s.dataLength;
  out.num_children = s.numChildren;
  return out;
}

std::string Join(const std::vector<std::string>& servers) {
  std::string out;
  for (const std::string& server : servers) {
    if (!out.empty()) out += ',';
    out += server;
  }
  return out;
}

int DataLength(std::string_view data, std::string_view path) {
  // ZooKeeper's wire format carries lengths as int32.
  if (data.size() > static_cast<std::size_t>(INT32_MAX)) {
    throw ZooKeeperError(ZooKeeperError::Code::kBadArguments, ZBADARGUMENTS, std::string(path),
                         "ZooKeeper: data for " + std::string(path) + " is too large");
  }
  return static_cast<int>(data.size());
}

// The C library's ACL_vector over our entries: owns copies of the strings the C structs
// point at, so it stays valid while it lives.
class CAcl {
 public:
  explicit CAcl(const std::vector<ZooKeeperAcl>& acl) : entries_(acl.empty() ? OpenAcl() : acl) {
    c_.reserve(entries_.size());
    for (ZooKeeperAcl& entry : entries_) {
      c_.push_back(ACL{entry.perms, Id{entry.scheme.data(), entry.id.data()}});
    }
    vector_.count = static_cast<std::int32_t>(c_.size());
    vector_.data = c_.data();
  }
  CAcl(const CAcl&) = delete;
  CAcl& operator=(const CAcl&) = delete;

  ACL_vector* get() { return &vector_; }

 private:
  std::vector<ZooKeeperAcl> entries_;
  std::vector<ACL> c_;
  ACL_vector vector_{};
};

std::vector<ZooKeeperAcl> FromCAcl(const ACL_vector* acl) {
  std::vector<ZooKeeperAcl> out;
  if (acl == nullptr) return out;
  out.reserve(static_cast<std::size_t>(acl->count));
  for (int i = 0; i < acl->count; ++i) {
    const ACL& entry = acl->data[i];
    out.push_back(ZooKeeperAcl{entry.perms, entry.id.scheme ? entry.id.scheme : "",
                               entry.id.id ? entry.id.id : ""});
  }
  return out;
}

}  // namespace

std::vector<ZooKeeperAcl> OpenAcl() { return {ZooKeeperAcl{zk_perm::kAll, "world", "anyone"}}; }

std::string DigestAclId(const ZooKeeperDigest& digest) {
  const std::string credentials = digest.user + ":" + digest.password;
  unsigned char hash[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(credentials.data()), credentials.size(), hash);
  return digest.user + ":" +
         common::EncodeBase64(std::string_view(reinterpret_cast<const char*>(hash), SHA_DIGEST_LENGTH));
}

ZooKeeperError::ZooKeeperError(Code code, int zoo_code, std::string path,
                               const std::string& message)
    : std::runtime_error(message), code_(code), zoo_code_(zoo_code), path_(std::move(path)) {}

bool ZooKeeperError::retryable() const noexcept {
  return code_ == Code::kConnectionLoss || code_ == Code::kOperationTimeout ||
         code_ == Code::kUnreachable;
}

// How often, at most, the library resolves the server names while connected.
constexpr std::chrono::milliseconds kServerResolutionDelay{30000};

class ZooKeeperClient::Impl {
 public:
  explicit Impl(const ZooKeeperOptions& options) : servers_(Join(options.servers)) {
    if (options.servers.empty()) {
      throw ZooKeeperError(ZooKeeperError::Code::kBadArguments, ZBADARGUMENTS, "",
                           "ZooKeeper: no servers given");
    }
    zhandle_t* raw = zookeeper_init2(servers_.c_str(), &Impl::OnWatch,
                                     static_cast<int>(options.session_timeout.count()),
                                     nullptr, this, 0, &RouteLibraryLog);
    if (raw == nullptr) {
      const int err = errno;
      throw ZooKeeperError(ZooKeeperError::Code::kUnreachable, ZSYSTEMERROR, "",
                           "ZooKeeper: cannot start a session with servers " + servers_ + ": " +
                               std::strerror(err));
    }
    handle_.reset(raw);
    // The library re-resolves the server names every time it polls its socket (each I/O
    // loop turn: a getaddrinfo, with its netlink interface dump, per batch of replies),
    // which costs more CPU than the reads themselves on a pipelined tree read. Once per
    // kServerResolutionDelay still follows DNS changes, and a lost connection always
    // resolves again.
    zoo_set_servers_resolution_delay(raw, static_cast<int>(kServerResolutionDelay.count()));

    std::unique_lock lock(mu_);
    const bool settled = cv_.wait_for(lock, options.connect_timeout, [this] {
      return state_ == ZOO_CONNECTED_STATE || state_ == ZOO_AUTH_FAILED_STATE ||
             state_ == ZOO_EXPIRED_SESSION_STATE;
    });
    const int state = state_;
    lock.unlock();
    if (settled && state == ZOO_CONNECTED_STATE) {
      if (options.digest) AddDigest(*options.digest, options.connect_timeout);
      return;
    }
    handle_.reset();  // zookeeper_close: stops the library's threads before we throw
    if (state == ZOO_AUTH_FAILED_STATE) {
      throw ZooKeeperError(ZooKeeperError::Code::kAuthFailed, ZAUTHFAILED, "",
                           "ZooKeeper: authentication failed with servers " + servers_);
    }
    throw ZooKeeperError(ZooKeeperError::Code::kUnreachable, ZCONNECTIONLOSS, "",
                         "ZooKeeper: no session with servers " + servers_ + " within " +
                             std::to_string(options.connect_timeout.count()) + " ms");
  }

  zhandle_t* zh() const { return handle_.get(); }

  // The extra sessions of options.read_sessions (constant after construction).
  std::vector<std::unique_ptr<ZooKeeperClient>>& readers() { return readers_; }

  // zoo_async: once it returns, this session sees every write the leader had committed
  // when the server received the request. Throws the library's error.
  void Sync() {
    std::promise<int> done;
    std::future<int> result = done.get_future();
    const int rc = zoo_async(
        handle_.get(), "/",
        [](int answer, const char* /*value*/, const void* data) {
          static_cast<std::promise<int>*>(const_cast<void*>(data))->set_value(answer);
        },
        &done);
    if (rc != ZOK) Throw(rc, "sync", "/");
    const int answer = result.get();  // the library always completes (an error on loss)
    if (answer != ZOK) Throw(answer, "sync", "/");
  }

  // Waits for the answer of zoo_add_auth; the server closes the session on a rejected
  // scheme (never for digest, which accepts any password).
  void AddDigest(const ZooKeeperDigest& digest, std::chrono::milliseconds timeout) {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      int rc = ZOK;
    };
    auto wait = std::make_shared<Wait>();
    // The completion may run after a timeout made us give up: it holds its own reference.
    auto* context = new std::shared_ptr<Wait>(wait);
    const std::string credentials = digest.user + ":" + digest.password;
    const int rc = zoo_add_auth(
        handle_.get(), "digest", credentials.data(), static_cast<int>(credentials.size()),
        [](int result, const void* data) {
          auto* held = static_cast<std::shared_ptr<Wait>*>(const_cast<void*>(data));
          {
            std::lock_guard lock((*held)->mu);
            (*held)->done = true;
            (*held)->rc = result;
          }
          (*held)->cv.notify_all();
          delete held;
        },
        context);
    if (rc != ZOK) {
      delete context;
      handle_.reset();
      throw ZooKeeperError(ZooKeeperError::Code::kAuthFailed, rc, "",
                           "ZooKeeper: cannot add digest credentials for user \"" + digest.user +
                               "\" with servers " + servers_ + ": " + zerror(rc));
    }
    std::unique_lock lock(wait->mu);
    const bool done = wait->cv.wait_for(lock, timeout, [&] { return wait->done; });
    const int result = wait->rc;
    lock.unlock();
    if (done && result == ZOK) return;
    handle_.reset();  // runs the completion (with an error) if it is still pending
    throw ZooKeeperError(ZooKeeperError::Code::kAuthFailed, done ? result : ZOPERATIONTIMEOUT, "",
                         "ZooKeeper: digest authentication as \"" + digest.user +
                             "\" failed with servers " + servers_ + ": " +
                             zerror(done ? result : ZOPERATIONTIMEOUT));
  }

  std::int64_t session_id() const {
    const clientid_t* id = zoo_client_id(handle_.get());
    return id == nullptr ? 0 : id->client_id;
  }

  [[noreturn]] void Throw(int rc, std::string_view operation, std::string_view path) const {
    ZooKeeperError::Code code = CodeFor(rc);
    if (rc == ZINVALIDSTATE && zoo_state(handle_.get()) == ZOO_AUTH_FAILED_STATE) {
      code = ZooKeeperError::Code::kAuthFailed;
    }
    throw ZooKeeperError(code, rc, std::string(path),
                         "ZooKeeper " + std::string(operation) + " " + std::string(path) + ": " +
                             zerror(rc) + " (" + std::to_string(rc) + ")");
  }

 private:
  // Session events arrive on the library's completion thread.
  static void OnWatch(zhandle_t* /*zh*/, int type, int state, const char* /*path*/,
                      void* context) noexcept {
    if (type != ZOO_SESSION_EVENT) return;
    auto* self = static_cast<Impl*>(context);
    {
      std::lock_guard lock(self->mu_);
      self->state_ = state;
    }
    self->cv_.notify_all();
  }

  struct HandleCloser {
    void operator()(zhandle_t* zh) const { zookeeper_close(zh); }
  };

  // Constant after construction.
  const std::string servers_;  // "host:port,host:port"

  std::mutex mu_;
  std::condition_variable cv_;
  int state_ = 0;  // guarded by mu_: the last session state seen (ZOO_*_STATE)

  // Declared last so it is closed first: the library's threads (which call OnWatch on
  // this object) are joined before the fields above go away.
  std::unique_ptr<zhandle_t, HandleCloser> handle_;
  // Sessions of their own, closed before this one.
  std::vector<std::unique_ptr<ZooKeeperClient>> readers_;
};

ZooKeeperClient::ZooKeeperClient(const ZooKeeperOptions& options)
    : impl_(std::make_unique<Impl>(options)) {
  ZooKeeperOptions reader = options;
  reader.read_sessions = 1;
  for (std::size_t i = 1; i < options.read_sessions; ++i) {
    impl_->readers().push_back(std::make_unique<ZooKeeperClient>(reader));
  }
}
ZooKeeperClient::~ZooKeeperClient() = default;

std::int64_t ZooKeeperClient::session_id() const { return impl_->session_id(); }

std::optional<ZooKeeperStat> ZooKeeperClient::Exists(std::string_view path) {
  const std::string p(path);
  Stat stat{};
  const int rc = zoo_exists(impl_->zh(), p.c_str(), 0, &stat);
  if (rc == ZNONODE) return std::nullopt;
  if (rc != ZOK) impl_->Throw(rc, "exists", path);
  return ToStat(stat);
}

std::optional<ZooKeeperNode> ZooKeeperClient::Get(std::string_view path) {
  const std::string p(path);
  std::string buffer(kInitialGetBuffer, '\0');
  while (true) {
    Stat stat{};
    int length = static_cast<int>(buffer.size());
    const int rc = zoo_get(impl_->zh(), p.c_str(), 0, buffer.data(), &length, &stat);
    if (rc == ZNONODE) return std::nullopt;
    if (rc != ZOK) impl_->Throw(rc, "get", path);
    if (stat.dataLength > static_cast<int>(buffer.size())) {
      // Truncated: fetch again with room for all of it (it may have grown meanwhile, in
      // which case the loop goes round once more).
      buffer.assign(static_cast<std::size_t>(stat.dataLength), '\0');
      continue;
    }
    // length is -1 for a node created with null data.
    buffer.resize(static_cast<std::size_t>(std::max(length, 0)));
    return ZooKeeperNode{std::move(buffer), ToStat(stat)};
  }
}

std::vector<std::string> ZooKeeperClient::Children(std::string_view path) {
  const std::string p(path);
  String_vector children{};
  const int rc = zoo_get_children(impl_->zh(), p.c_str(), 0, &children);
  if (rc != ZOK) impl_->Throw(rc, "get children of", path);
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(children.count));
  for (int i = 0; i < children.count; ++i) names.emplace_back(children.data[i]);
  deallocate_String_vector(&children);
  std::sort(names.begin(), names.end());
  return names;
}

std::string ZooKeeperClient::Create(std::string_view path, std::string_view data,
                                    const ZooKeeperCreateOptions& options,
                                    const std::vector<ZooKeeperAcl>& acl) {
  const std::string p(path);
  if (options.create_parents) {
    // Ancestors one by one from the top; existing ones (ours or a racer's) are fine.
    for (std::size_t slash = p.find('/', 1); slash != std::string::npos;
         slash = p.find('/', slash + 1)) {
      const std::string parent = p.substr(0, slash);
      const int rc = zoo_create(impl_->zh(), parent.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE,
                                ZOO_PERSISTENT, nullptr, 0);
      if (rc != ZOK && rc != ZNODEEXISTS) impl_->Throw(rc, "create parent", parent);
    }
  }
  int mode = options.ephemeral ? ZOO_EPHEMERAL : ZOO_PERSISTENT;
  if (options.sequential) {
    mode = options.ephemeral ? ZOO_EPHEMERAL_SEQUENTIAL : ZOO_PERSISTENT_SEQUENTIAL;
  }
  std::string created(p.size() + kSequenceSuffix + 1, '\0');  // + NUL
  CAcl c_acl(acl);
  const int rc = zoo_create(impl_->zh(), p.c_str(), data.data(), DataLength(data, path),
                            c_acl.get(), mode, created.data(),
                            static_cast<int>(created.size()));
  if (rc != ZOK) impl_->Throw(rc, "create", path);
  created.resize(created.find('\0'));
  return created;
}

ZooKeeperStat ZooKeeperClient::Set(std::string_view path, std::string_view data,
                                   std::int32_t version) {
  const std::string p(path);
  Stat stat{};
  const int rc =
      zoo_set2(impl_->zh(), p.c_str(), data.data(), DataLength(data, path), version, &stat);
  if (rc != ZOK) impl_->Throw(rc, "set", path);
  return ToStat(stat);
}

void ZooKeeperClient::Delete(std::string_view path, std::int32_t version) {
  const std::string p(path);
  const int rc = zoo_delete(impl_->zh(), p.c_str(), version);
  if (rc != ZOK) impl_->Throw(rc, "delete", path);
}

void ZooKeeperClient::DeleteRecursive(std::string_view path) {
  if (path == "/" || path.empty()) {
    throw ZooKeeperError(ZooKeeperError::Code::kBadArguments, ZBADARGUMENTS, std::string(path),
                         "ZooKeeper: refusing to delete the whole tree at \"" +
                             std::string(path) + "\"");
  }
  const std::string p(path);
  int rc = ZOK;
  for (int attempt = 0; attempt < kDeleteAttempts; ++attempt) {
    std::vector<std::string> children;
    try {
      children = Children(path);
    } catch (const ZooKeeperError& e) {
      if (e.code() == ZooKeeperError::Code::kNoNode) return;
      throw;
    }
    for (const std::string& child : children) DeleteRecursive(p + "/" + child);
    rc = zoo_delete(impl_->zh(), p.c_str(), kAnyVersion);
    if (rc == ZOK || rc == ZNONODE) return;
    if (rc != ZNOTEMPTY) break;  // ZNOTEMPTY: a child appeared meanwhile; go again
  }
  impl_->Throw(rc, "delete", path);
}

std::vector<ZooKeeperAcl> ZooKeeperClient::GetAcl(std::string_view path) {
  const std::string p(path);
  ACL_vector acl{};
  Stat stat{};
  const int rc = zoo_get_acl(impl_->zh(), p.c_str(), &acl, &stat);
  if (rc != ZOK) impl_->Throw(rc, "get ACL of", path);
  std::vector<ZooKeeperAcl> out = FromCAcl(&acl);
  deallocate_ACL_vector(&acl);
  return out;
}

void ZooKeeperClient::SetAcl(std::string_view path, const std::vector<ZooKeeperAcl>& acl,
                             std::int32_t version) {
  const std::string p(path);
  CAcl c_acl(acl);
  const int rc = zoo_set_acl(impl_->zh(), p.c_str(), version, c_acl.get());
  if (rc != ZOK) impl_->Throw(rc, "set ACL of", path);
}

namespace {

// The shared state of one ReadMany call: the completions (on the library's completion
// thread) fill the result slots and count down; the caller waits for room in the window
// and, at the end, for every request to have finished (the slots must outlive them).
struct ReadBatch {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0;  // guarded by mu
  // The caller sleeps until in_flight is at most this (guarded by mu); a completion wakes
  // it only then, not once per reply (a futex wake and two context switches each).
  std::size_t wake_at = 0;
  int first_error = ZOK;      // guarded by mu
  std::string first_error_path;
  std::string first_error_operation;

  std::vector<ZooKeeperRead>* results = nullptr;
  const std::vector<std::string>* paths = nullptr;
  zhandle_t* zh = nullptr;
  bool with_children = false;

  void Started() {
    std::lock_guard lock(mu);
    ++in_flight;
  }

  void Finish(int rc, std::size_t index, const char* operation) {
    std::lock_guard lock(mu);
    if (rc != ZOK && rc != ZNONODE && first_error == ZOK) {
      first_error = rc;
      first_error_path = (*paths)[index];
      first_error_operation = operation;
    }
    --in_flight;
    if (in_flight == wake_at) cv.notify_one();
  }
};

// The completion's context: which batch and which slot.
struct ReadSlot {
  ReadBatch* batch;
  std::size_t index;
};

void OnChildren(int result, const String_vector* strings, const void* data) {
  const auto* slot = static_cast<const ReadSlot*>(data);
  if (result == ZOK && strings != nullptr) {
    std::vector<std::string>& names = (*slot->batch->results)[slot->index].children;
    names.reserve(static_cast<std::size_t>(strings->count));
    for (int k = 0; k < strings->count; ++k) names.emplace_back(strings->data[k]);
    std::sort(names.begin(), names.end());
  }
  slot->batch->Finish(result, slot->index, "get children of");
}

}  // namespace

std::vector<ZooKeeperRead> ZooKeeperClient::ReadMany(const std::vector<std::string>& paths,
                                                     bool with_children, std::size_t window) {
  std::vector<std::unique_ptr<ZooKeeperClient>>& readers = impl_->readers();
  if (readers.empty()) return ReadPipelined(paths, with_children, window);
  // Several sessions may be connected to different servers of an ensemble, and `paths`
  // may have been listed by any of them (the previous call's slices): every session that
  // reads syncs first, so it sees at least what any of them listed before this call. A
  // node seen missing is then really gone, never only not yet replicated to a follower.
  // Below this many paths per session, one session's pipeline is as fast.
  constexpr std::size_t kPathsPerSessionAtLeast = 256;
  const std::size_t sessions =
      std::min(readers.size() + 1, std::max<std::size_t>(1, paths.size() / kPathsPerSessionAtLeast));
  if (sessions == 1) {
    impl_->Sync();
    return ReadPipelined(paths, with_children, window);
  }

  // Slice k of paths: [k * n / sessions, (k + 1) * n / sessions).
  const auto bound = [&](std::size_t k) {
    return static_cast<std::ptrdiff_t>(k * paths.size() / sessions);
  };
  std::vector<std::future<std::vector<ZooKeeperRead>>> others;
  for (std::size_t k = 1; k < sessions; ++k) {
    others.push_back(std::async(std::launch::async, [&, k] {
      ZooKeeperClient& reader = *readers[k - 1];
      reader.impl_->Sync();
      return reader.ReadPipelined(
          std::vector<std::string>(paths.begin() + bound(k), paths.begin() + bound(k + 1)),
          with_children, window);
    }));
  }
  std::vector<ZooKeeperRead> results;
  std::exception_ptr failure;
  try {
    impl_->Sync();
    results = ReadPipelined(std::vector<std::string>(paths.begin(), paths.begin() + bound(1)),
                            with_children, window);
  } catch (...) {
    failure = std::current_exception();
  }
  results.reserve(paths.size());
  for (auto& other : others) {
    try {
      std::vector<ZooKeeperRead> slice = other.get();
      std::move(slice.begin(), slice.end(), std::back_inserter(results));
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  return results;
}

std::vector<ZooKeeperRead> ZooKeeperClient::ReadPipelined(const std::vector<std::string>& paths,
                                                          bool with_children, std::size_t window) {
  std::vector<ZooKeeperRead> results(paths.size());
  ReadBatch batch;
  batch.results = &results;
  batch.paths = &paths;
  batch.zh = impl_->zh();
  batch.with_children = with_children;
  std::vector<ReadSlot> slots(paths.size());
  // Data and ACL now; the children's names follow from the data's completion when the
  // stat says there are some (so the window is exceeded by at most those).
  const std::size_t per_path = 2;
  window = std::max(window, per_path);

  int submit_error = ZOK;
  std::string submit_path;
  for (std::size_t i = 0; i < paths.size() && submit_error == ZOK; ++i) {
    slots[i] = ReadSlot{&batch, i};
    {
      std::unique_lock lock(batch.mu);
      if (batch.in_flight + per_path > window) {
        // Full: sleep until half the window has drained, then fill it again.
        batch.wake_at = window / 2;
        batch.cv.wait(lock, [&] { return batch.in_flight <= batch.wake_at; });
      }
      if (batch.first_error != ZOK) break;
      batch.in_flight += per_path;
    }
    const char* path = paths[i].c_str();
    const void* context = &slots[i];
    int submitted = 0;
    int rc = zoo_aget(
        impl_->zh(), path, 0,
        [](int result, const char* value, int value_len, const Stat* stat, const void* data) {
          const auto* slot = static_cast<const ReadSlot*>(data);
          ReadBatch& b = *slot->batch;
          if (result == ZOK) {
            ZooKeeperRead& read = (*b.results)[slot->index];
            read.exists = true;
            if (value != nullptr && value_len > 0) {
              read.data.assign(value, static_cast<std::size_t>(value_len));
            }
            if (stat != nullptr) read.stat = ToStat(*stat);
            // Children are asked for only where there are some: most znodes are leaves.
            if (b.with_children && stat != nullptr && stat->numChildren > 0) {
              b.Started();
              const int chained = zoo_aget_children(b.zh, (*b.paths)[slot->index].c_str(), 0,
                                                     &OnChildren, data);
              if (chained != ZOK) b.Finish(chained, slot->index, "get children of");
            }
          }
          b.Finish(result, slot->index, "get");
        },
        context);
    if (rc == ZOK) {
      ++submitted;
      rc = zoo_aget_acl(
          impl_->zh(), path,
          [](int result, ACL_vector* acl, Stat* /*stat*/, const void* data) {
            const auto* slot = static_cast<const ReadSlot*>(data);
            if (result == ZOK) (*slot->batch->results)[slot->index].acl = FromCAcl(acl);
            slot->batch->Finish(result, slot->index, "get ACL of");
          },
          context);
    }
    if (rc == ZOK) ++submitted;
    if (rc != ZOK) {
      submit_error = rc;
      submit_path = paths[i];
      std::lock_guard lock(batch.mu);
      batch.in_flight -= per_path - static_cast<std::size_t>(submitted);
    }
  }
  std::unique_lock lock(batch.mu);
  batch.wake_at = 0;
  batch.cv.wait(lock, [&] { return batch.in_flight == 0; });
  if (batch.first_error != ZOK) {
    impl_->Throw(batch.first_error, batch.first_error_operation, batch.first_error_path);
  }
  lock.unlock();
  if (submit_error != ZOK) impl_->Throw(submit_error, "read", submit_path);
  // A node deleted between two of its requests counts as missing.
  for (ZooKeeperRead& read : results) {
    if (!read.exists) read = ZooKeeperRead{};
  }
  return results;
}

void ZooKeeperClient::Multi(const std::vector<ZooKeeperOp>& ops) {
  if (ops.empty()) return;
  std::vector<zoo_op_t> c_ops(ops.size());
  std::vector<zoo_op_result_t> results(ops.size());
  std::vector<std::unique_ptr<CAcl>> acls;
  // Created paths come back here; never sequential, so the path's own length suffices.
  std::vector<std::string> created(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const ZooKeeperOp& op = ops[i];
    switch (op.kind) {
      case ZooKeeperOp::Kind::kCreate: {
        acls.push_back(std::make_unique<CAcl>(op.acl));
        created[i].assign(op.path.size() + 1, '\0');
        zoo_create_op_init(&c_ops[i], op.path.c_str(), op.data.data(),
                           DataLength(op.data, op.path), acls.back()->get(),
                           op.ephemeral ? ZOO_EPHEMERAL : ZOO_PERSISTENT, created[i].data(),
                           static_cast<int>(created[i].size()));
        break;
      }
      case ZooKeeperOp::Kind::kSet:
        zoo_set_op_init(&c_ops[i], op.path.c_str(), op.data.data(), DataLength(op.data, op.path),
                        kAnyVersion, nullptr);
        break;
      case ZooKeeperOp::Kind::kDelete:
        zoo_delete_op_init(&c_ops[i], op.path.c_str(), kAnyVersion);
        break;
    }
  }
  const int rc = zoo_multi(impl_->zh(), static_cast<int>(c_ops.size()), c_ops.data(),
                           results.data());
  if (rc == ZOK) return;
  // The op that failed carries its own code; the rest say "rolled back".
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const int err = results[i].err;
    if (err != ZOK && err != ZRUNTIMEINCONSISTENCY) {
      const char* operation = ops[i].kind == ZooKeeperOp::Kind::kCreate ? "multi create"
                              : ops[i].kind == ZooKeeperOp::Kind::kSet  ? "multi set"
                                                                        : "multi delete";
      impl_->Throw(err, operation, ops[i].path);
    }
  }
  impl_->Throw(rc, "multi starting at", ops.front().path);
}

}  // namespace ro::plugins

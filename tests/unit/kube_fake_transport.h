// A scripted Transport for unit tests of the client logic: answers requests from a
// queue of canned responses (or a handler) and records every request it saw.
// Not a server: no sockets, no threads.
#pragma once

#include <deque>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ro/kube/transport.h"

namespace ro::kube::testing {

class FakeTransport : public Transport {
 public:
  // Answers the next request whose path starts with `path_prefix` (and method matches)
  // with `status` and `body`. Responses for the same prefix are used in order.
  void Respond(std::string method, std::string path_prefix, long status, std::string body) {
    scripted_.push_back({std::move(method), std::move(path_prefix), status, std::move(body)});
  }
  // The bytes Stream() delivers, chunk by chunk, after status.
  void StreamChunks(long status, std::vector<std::string> chunks) {
    stream_status_ = status;
    stream_chunks_ = std::move(chunks);
  }

  HttpResponse Do(const HttpRequest& request) override {
    requests.push_back(request);
    for (auto it = scripted_.begin(); it != scripted_.end(); ++it) {
      if (it->method == request.method && request.path.rfind(it->path_prefix, 0) == 0) {
        HttpResponse response;
        response.status = it->status;
        response.body = std::move(it->body);
        response.content_type = "application/json";
        scripted_.erase(it);
        return response;
      }
    }
    throw std::logic_error("FakeTransport: unexpected " + request.method + " " + request.path);
  }

  void Stream(const HttpRequest& request, const std::function<void(long)>& on_status,
              const std::function<void(std::string_view)>& on_data,
              std::stop_token /*stop*/) override {
    requests.push_back(request);
    on_status(stream_status_);
    for (const auto& chunk : stream_chunks_) on_data(chunk);
  }

  std::vector<HttpRequest> requests;

 private:
  struct Scripted {
    std::string method;
    std::string path_prefix;
    long status;
    std::string body;
  };
  std::deque<Scripted> scripted_;
  long stream_status_ = 200;
  std::vector<std::string> stream_chunks_;
};

}  // namespace ro::kube::testing

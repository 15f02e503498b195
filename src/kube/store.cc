#include "ro/kube/store.h"

#include <nlohmann/json.hpp>

#include <mutex>
#include <stdexcept>

#include "ro/common/object_meta.h"

namespace ro::kube {
namespace {

// Calls fn("key=value") for each label of the object.
template <typename Fn>
void ForEachLabel(const nlohmann::json& object, const Fn& fn) {
  for (const auto& [k, v] : common::Labels(object).items()) {
    if (v.is_string()) fn(k + "=" + v.template get_ref<const std::string&>());
  }
}

}  // namespace

std::string ObjectStoreKey(const nlohmann::json& object) {
  const std::string& name = common::Name(object);
  if (name.empty()) throw std::invalid_argument("object has no metadata.name");
  const std::string& ns = common::Namespace(object);
  if (ns.empty()) return name;
  return ns + "/" + name;
}

std::string ObjectResourceVersion(const nlohmann::json& object) {
  return common::ResourceVersion(object);
}

void Store::IndexLocked(std::string_view key, const nlohmann::json& object) {
  by_namespace_[common::Namespace(object)].insert(key);
  ForEachLabel(object, [&](std::string label) { by_label_[std::move(label)].insert(key); });
}

void Store::UnindexLocked(std::string_view key, const nlohmann::json& object) {
  const auto erase_from = [&](auto& index, const std::string& name) {
    const auto it = index.find(name);
    if (it == index.end()) return;
    it->second.erase(key);
    if (it->second.empty()) index.erase(it);
  };
  erase_from(by_namespace_, common::Namespace(object));
  ForEachLabel(object, [&](const std::string& label) { erase_from(by_label_, label); });
}

ObjectPtr Store::Add(ObjectPtr object) {
  if (!object) throw std::invalid_argument("Store::Add: null object");
  std::string key = ObjectStoreKey(*object);
  std::unique_lock lock(mu_);
  auto [it, inserted] = objects_.try_emplace(std::move(key));
  ObjectPtr previous;
  if (!inserted) {
    previous = std::move(it->second);
    UnindexLocked(it->first, *previous);
  }
  it->second = std::move(object);
  IndexLocked(it->first, *it->second);
  return previous;
}

ObjectPtr Store::Delete(std::string_view key) {
  std::unique_lock lock(mu_);
  const auto it = objects_.find(key);
  if (it == objects_.end()) return nullptr;
  ObjectPtr previous = std::move(it->second);
  UnindexLocked(it->first, *previous);
  objects_.erase(it);
  return previous;
}

StoreDiff Store::Replace(std::vector<ObjectPtr> objects) {
  std::map<std::string, ObjectPtr, std::less<>> next;
  for (ObjectPtr& object : objects) {
    if (!object) throw std::invalid_argument("Store::Replace: null object");
    std::string key = ObjectStoreKey(*object);
    next.insert_or_assign(std::move(key), std::move(object));
  }

  std::unique_lock lock(mu_);
  StoreDiff diff;
  for (auto& [key, object] : next) {
    const auto old = objects_.find(key);
    if (old == objects_.end()) {
      diff.added.push_back(object);
    } else if (ObjectResourceVersion(*old->second) != ObjectResourceVersion(*object) ||
               ObjectResourceVersion(*object).empty()) {
      diff.updated.emplace_back(old->second, object);
    } else {
      object = old->second;  // unchanged: keep the pointer readers may already hold
    }
  }
  for (const auto& [key, object] : objects_) {
    if (!next.contains(key)) diff.deleted.push_back(object);
  }

  objects_ = std::move(next);
  by_namespace_.clear();
  by_label_.clear();
  for (const auto& [key, object] : objects_) IndexLocked(key, *object);
  return diff;
}

ObjectPtr Store::Get(std::string_view key) const {
  std::shared_lock lock(mu_);
  const auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Store::List() const {
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(objects_.size());
  for (const auto& [key, object] : objects_) out.push_back(object);
  return out;
}

std::vector<std::string> Store::ListKeys() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  out.reserve(objects_.size());
  for (const auto& [key, object] : objects_) out.push_back(key);
  return out;
}

std::vector<ObjectPtr> Store::ResolveLocked(const KeySet* keys) const {
  std::vector<ObjectPtr> out;
  if (keys == nullptr) return out;
  out.reserve(keys->size());
  for (std::string_view key : *keys) out.push_back(objects_.find(key)->second);
  return out;
}

std::vector<ObjectPtr> Store::ListByNamespace(std::string_view ns) const {
  std::shared_lock lock(mu_);
  const auto it = by_namespace_.find(ns);
  return ResolveLocked(it == by_namespace_.end() ? nullptr : &it->second);
}

std::vector<ObjectPtr> Store::ListByLabel(std::string_view key, std::string_view value) const {
  std::string label;
  label.reserve(key.size() + 1 + value.size());
  label.append(key).append("=").append(value);
  std::shared_lock lock(mu_);
  const auto it = by_label_.find(label);
  return ResolveLocked(it == by_label_.end() ? nullptr : &it->second);
}

std::size_t Store::Size() const {
  std::shared_lock lock(mu_);
  return objects_.size();
}

}  // namespace ro::kube

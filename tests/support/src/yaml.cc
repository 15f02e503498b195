#include "ro/testsupport/yaml.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <stdexcept>
#include <string>

namespace ro::testsupport {
namespace {

using nlohmann::json;

json Scalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: always a string
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (text.empty() || text == "null" || text == "Null" || text == "NULL" || text == "~") return nullptr;
  std::int64_t integer = 0;
  if (auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), integer);
      ec == std::errc() && end == text.data() + text.size()) {
    return integer;
  }
  double number = 0;
  if (auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      ec == std::errc() && end == text.data() + text.size()) {
    return number;
  }
  return text;
}

json Convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) out.push_back(Convert(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) out[entry.first.Scalar()] = Convert(entry.second);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

json YamlToJson(std::string_view yaml) {
  try {
    return Convert(YAML::Load(std::string(yaml)));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(std::string("invalid YAML: ") + e.what());
  }
}

}  // namespace ro::testsupport

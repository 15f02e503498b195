// YAML documents (the manual's samples, written as a user would) as JSON for tests.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace ro::testsupport {

// Converts one YAML document to JSON with YAML 1.2 core-schema scalars: plain `true`,
// `false`, `null`/`~`, integers and floats become JSON booleans, null and numbers;
// quoted scalars (`"true"`) and everything else stay strings. Throws std::runtime_error
// (yaml-cpp's message) for invalid YAML.
nlohmann::json YamlToJson(std::string_view yaml);

}  // namespace ro::testsupport

// The configuration checks on a YAML document already parsed: what
// load_end and load_middle run after reading and parsing the file. For
// fuzzing our own checks directly (the file path runs the YAML parser in a
// child process with a deadline, which a fuzzer cannot afford per input).
// `file` names the source in error messages; relative paths in the
// document resolve against its folder.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "config/config.hpp"

namespace config {

// The document's top-level node (a map); throws config::error.
end_config end_from_yaml(const YAML::Node& root, const std::string& file);
middle_config middle_from_yaml(const YAML::Node& root, const std::string& file);

}  // namespace config

// plexus-info --params: one table of every PLEXUS_* parameter, the loader's
// own and each plugin's, read from plx_plugins_describe's JSON so the tool
// shows exactly what the loader and the plugins declare.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/json.hpp"
#include "tools/plexus-info/json_value.hpp"
#include "tools/plexus-info/print.hpp"

namespace plexus::info {
namespace {

struct Row {
  std::string owner, name, type, def, value, help;
};

void add_rows(const std::string &owner, const JsonValue *params, std::vector<Row> *rows) {
  if (params == nullptr) return;
  for (const JsonValue &p : params->items) {
    auto text = [&p](const char *key) { const JsonValue *v = p.get(key); return v ? v->as_text() : ""; };
    rows->push_back({owner, text("name"), text("type"), text("default"), text("value"), text("help")});
  }
}

std::vector<Row> collect(const JsonValue &doc) {
  std::vector<Row> rows;
  add_rows("loader", doc.get("loader_params"), &rows);
  const JsonValue *plugins = doc.get("plugins");
  for (const JsonValue &p : plugins ? plugins->items : std::vector<JsonValue>{}) {
    const JsonValue *name = p.get("name");
    add_rows(name ? name->as_text() : "?", p.get("params"), &rows);
  }
  return rows;
}

// An empty default or value prints as "-" so the columns stay readable.
std::string cell(const std::string &s) { return s.empty() ? "-" : s; }

std::vector<std::string> columns(const Row &r) { return {r.owner, r.name, r.type, cell(r.def), cell(r.value)}; }

void print_line(const std::vector<std::string> &cols, const std::vector<size_t> &width, const std::string &help) {
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) out += fmt::format("{:<{}}  ", cols[i], width[i]);
  std::printf("%s%s\n", out.c_str(), help.c_str());
}

void print_table(const std::vector<Row> &rows) {
  const Row head{"owner", "parameter", "type", "default", "value", "help"};
  std::vector<size_t> width(5, 0);
  for (size_t i = 0; i < 5; ++i) width[i] = columns(head)[i].size();
  for (const Row &r : rows)
    for (size_t i = 0; i < 5; ++i) width[i] = std::max(width[i], columns(r)[i].size());
  print_line(columns(head), width, head.help);
  for (const Row &r : rows) print_line(columns(r), width, r.help);
}

void print_rows_json(const std::vector<Row> &rows) {
  core::JsonWriter w;
  w.begin_array();
  for (const Row &r : rows)
    w.begin_object().field("owner", std::string_view(r.owner)).field("name", std::string_view(r.name))
        .field("type", std::string_view(r.type)).field("default", std::string_view(r.def))
        .field("value", std::string_view(r.value)).field("help", std::string_view(r.help)).end_object();
  w.end_array();
  std::printf("%s\n", w.str().c_str());
}

}  // namespace

bool print_params(const std::string &plugins_json, bool as_json) {
  const std::optional<JsonValue> doc = parse_json(plugins_json);
  if (!doc) {
    std::fprintf(stderr, "plexus-info: the loader's plugin description is not valid JSON\n");
    return false;
  }
  const std::vector<Row> rows = collect(*doc);
  if (as_json) print_rows_json(rows);
  else print_table(rows);
  return true;
}

}  // namespace plexus::info

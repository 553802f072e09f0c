// The status page: one self-contained HTML document (its script and styles
// inline, no external assets), made at build time from status_page.html.
#pragma once

#include <string_view>

namespace admin {
std::string_view status_page_html();
}  // namespace admin

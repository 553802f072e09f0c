// The facts the request rules decide on, read from a request Beast parsed
// (the admin server's and the fuzzer's). The views point into `req`.
#pragma once

#include <boost/beast/http/message.hpp>

#include "admin/request_rules.hpp"

namespace admin {

template <class Body, class Fields>
request_facts facts_of(const boost::beast::http::request<Body, Fields>& req) {
  namespace http = boost::beast::http;
  request_facts facts;
  facts.method = req.method_string();
  facts.target = req.target();
  facts.authorization = req[http::field::authorization];
  facts.host = req[http::field::host];
  facts.origin = req[http::field::origin];
  facts.fetch_site = req["Sec-Fetch-Site"];
  return facts;
}

}  // namespace admin

// HTTP status codes as text, shared by the server (error bodies) and the client SDK (error
// messages), so both name a status the same way.
#pragma once

#include <string_view>

namespace cairn {

//! The reason phrase of a status, with the names Daytona's server uses in its error bodies
//! ("Payload Too Large", "Unprocessable Entity"), nginx's 499 "Client Closed Request", and ""
//! for a code Cairn does not name.
std::string_view httpReasonPhrase(int status);

}  // namespace cairn

// The little XML that S3 speaks, for the built-in S3 endpoint (api) and the SDK's S3 client:
// escaping text and attribute values, and reading the text of an element from a flat reply
// such as <Error><Code>NoSuchKey</Code>…</Error> or <InitiateMultipartUploadResult>.
//
// This is not an XML parser: no namespace prefixes, attributes, CDATA or nesting of the same
// tag. S3's documents do not need them, and anything it does not understand is left as text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cairn {

//! Escapes all five predefined entities (& < > " '), so the result is safe as element text
//! and as a quoted attribute value.
std::string xmlEscape(std::string_view s);

//! Replaces the five predefined entities and character references (&#233; &#xE9;) with what
//! they stand for; an unknown or malformed reference (and &#0;, a surrogate or a value above
//! U+10FFFF) is kept as written, and a lone '&' stays '&'.
std::string xmlUnescape(std::string_view s);

//! The text of the first <tag>…</tag> in `xml`, white space around it trimmed and unescaped;
//! nullopt when the element is missing or not closed.
std::optional<std::string> xmlElementText(std::string_view xml, std::string_view tag);

//! The raw contents (markup and entities as written) of every <tag>…</tag> in `xml`, in order,
//! up to the first one that is not closed: the <Part> list of a CompleteMultipartUpload.
std::vector<std::string_view> xmlElements(std::string_view xml, std::string_view tag);

}  // namespace cairn

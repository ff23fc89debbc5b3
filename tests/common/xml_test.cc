#include "cairn/common/xml.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn {
namespace {

TEST(XmlTest, EscapesAllFiveEntities) {
  EXPECT_EQ(xmlEscape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(xmlEscape(""), "");
  EXPECT_EQ(xmlEscape("plain/key é"), "plain/key é");
  // Already-escaped text is escaped again: the caller's string is data, not markup.
  EXPECT_EQ(xmlEscape("&amp;"), "&amp;amp;");
}

TEST(XmlTest, UnescapeInvertsEscape) {
  std::string all = "&<>\"' mixed &amp; text\n\xC3\xA9";
  EXPECT_EQ(xmlUnescape(xmlEscape(all)), all);
  EXPECT_EQ(xmlUnescape("&lt;a&gt; &quot;b&quot; &apos;c&apos; &amp;"), "<a> \"b\" 'c' &");
}

TEST(XmlTest, CharacterReferences) {
  EXPECT_EQ(xmlUnescape("&#65;&#x42;&#X43;"), "ABC");
  EXPECT_EQ(xmlUnescape("&#233;"), "\xC3\xA9");
  EXPECT_EQ(xmlUnescape("&#x1F600;"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(xmlUnescape("&#13;&#10;"), "\r\n");
}

TEST(XmlTest, MalformedReferencesAreKept) {
  EXPECT_EQ(xmlUnescape("a & b"), "a & b");
  EXPECT_EQ(xmlUnescape("&nbsp;"), "&nbsp;");
  EXPECT_EQ(xmlUnescape("&amp"), "&amp");
  EXPECT_EQ(xmlUnescape("&#;"), "&#;");
  EXPECT_EQ(xmlUnescape("&#x;"), "&#x;");
  EXPECT_EQ(xmlUnescape("&#12a;"), "&#12a;");
  EXPECT_EQ(xmlUnescape("&#0;"), "&#0;");
  EXPECT_EQ(xmlUnescape("&#xD800;"), "&#xD800;");
  EXPECT_EQ(xmlUnescape("&#x110000;"), "&#x110000;");
  EXPECT_EQ(xmlUnescape("&#99999999999999999999;"), "&#99999999999999999999;");
  // An unknown reference does not swallow a valid one after it.
  EXPECT_EQ(xmlUnescape("&foo&amp;"), "&foo&");
}

TEST(XmlTest, ElementTextOfAnS3Error) {
  std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
      "<Message>The key &quot;a&amp;b&quot; does not exist</Message>"
      "<Resource>/b/a&amp;b</Resource></Error>";
  EXPECT_EQ(xmlElementText(body, "Code"), "NoSuchKey");
  EXPECT_EQ(xmlElementText(body, "Message"), "The key \"a&b\" does not exist");
  EXPECT_EQ(xmlElementText(body, "Resource"), "/b/a&b");
  EXPECT_EQ(xmlElementText(body, "RequestId"), std::nullopt);
}

TEST(XmlTest, ElementTextIsTrimmedAndFirstWins) {
  std::string xml =
      "<CompleteMultipartUpload><Part>\n  <PartNumber> 1 </PartNumber>\n"
      "  <ETag>\"abc\"</ETag></Part><Part><PartNumber>2</PartNumber></Part>"
      "<Empty></Empty></CompleteMultipartUpload>";
  EXPECT_EQ(xmlElementText(xml, "PartNumber"), "1");
  EXPECT_EQ(xmlElementText(xml, "ETag"), "\"abc\"");
  EXPECT_EQ(xmlElementText(xml, "Empty"), "");
}

TEST(XmlTest, ElementTextNeedsBothTags) {
  EXPECT_EQ(xmlElementText("<Code>NoSuchKey", "Code"), std::nullopt);
  EXPECT_EQ(xmlElementText("NoSuchKey</Code>", "Code"), std::nullopt);
  EXPECT_EQ(xmlElementText("", "Code"), std::nullopt);
  // A tag name is matched whole: <CodeX> is not <Code>.
  EXPECT_EQ(xmlElementText("<CodeX>1</CodeX>", "Code"), std::nullopt);
}

TEST(XmlTest, ElementsListsEveryClosedOccurrence) {
  std::string xml =
      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
      "<Part><PartNumber>2</PartNumber></Part><Part><PartNumber>3</PartNumber>";
  std::vector<std::string_view> parts = xmlElements(xml, "Part");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], "<PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag>");
  EXPECT_EQ(xmlElementText(parts[0], "ETag"), "\"a\"");
  EXPECT_EQ(parts[1], "<PartNumber>2</PartNumber>");
  EXPECT_TRUE(xmlElements(xml, "Missing").empty());
  EXPECT_TRUE(xmlElements("", "Part").empty());
}

}  // namespace
}  // namespace cairn

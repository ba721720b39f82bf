/* UTF-8 cases shared by the codec's reader and writer tests. */
#ifndef GW_TEST_UTF8_CASES_H
#define GW_TEST_UTF8_CASES_H

/* Text of one-, two-, three- and four-byte characters (~110 bytes, so that
 * the 16-byte checks see every kind of character cut at every place), and the
 * bytes each of its bytes is replaced by in turn: ones that break it or change
 * it (a lone continuation, a lead with nothing after it, the overlong and
 * surrogate leads, bytes past U+10FFFF, ASCII, a control, a quote). */
static const char utf8_text[] =
    "A\xc3\xb1\xe4\xbd\xa0\xf0\x9f\x98\x80"
    "b\xe2\x82\xac\xe4\xb8\xad\xe6\x96\x87\xf0\x9f\x98\x80"
    "\xc3\xa9x\xe6\xb5\x8b\xe8\xaf\x95"
    "ab\xe4\xbd\xa0\xe5\xa5\xbd\xf0\x9f\x98\x80\xc3\xa9\xc3\xa9"
    "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbf\xbf\xf4\x8f\xbf\xbf"
    "\xe4\xbd\xa0\xe5\xa5\xbd"
    "abc\xc2\x80\xdf\xbf\xe0\xa0\x80\xf0\x90\x80\x80\xe4\xbd\xa0"
    "\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd";
static const unsigned char utf8_breakers[] = {0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed,
                                              0xef, 0xf0, 0xf4, 0xf5, 0xff, 'a',  0x01, '"'};

#endif

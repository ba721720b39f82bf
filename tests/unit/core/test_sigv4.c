/* SigV4 against AWS's documented vectors: the aws-sig-v4-test-suite's
 * get-vanilla and post-vanilla, and the IAM ListUsers example of the
 * "Create a signed AWS API request" guide (canonical request included);
 * a Bedrock-style path encoded twice; a fail-malloc sweep. */
#include "support.h"

#include <string.h>

#include "core/sigv4.h"
#include "core/status.h"

static const gw_sigv4_credentials suite = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"};

static void sign(const gw_sigv4_request *r, const gw_sigv4_credentials *c, const char *want,
                 const char *want_canonical) {
  gw_buf out, canon;
  gw_buf_init(&out, 4096);
  gw_buf_init(&canon, 4096);
  assert_int_equal(gw_sigv4_authorization(r, c, "20150830T123600Z", &out, &canon), GW_OK);
  if (want_canonical)
    assert_string_equal(canon.data, want_canonical);
  assert_string_equal(out.data, want);
  gw_buf_release(&out);
  gw_buf_release(&canon);
}

static void test_get_vanilla(void **state) {
  (void)state;
  gw_sigv4_header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  gw_sigv4_request r = {"GET", "/", NULL, h, 2, "", 0};
  sign(&r, &suite,
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_post_vanilla(void **state) {
  (void)state;
  gw_sigv4_header h[] = {{"X-Amz-Date", "20150830T123600Z"}, {"Host", "example.amazonaws.com"}};
  gw_sigv4_request r = {"POST", "/", "", h, 2, NULL, 0};
  sign(&r, &suite,
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
       NULL);
}

static void test_iam_list_users(void **state) {
  (void)state;
  gw_sigv4_credentials iam = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                              "us-east-1", "iam"};
  gw_sigv4_header h[] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                         {"Host", "iam.amazonaws.com"},
                         {"X-Amz-Date", "20150830T123600Z"}};
  gw_sigv4_request r = {"GET", "/", "Version=2010-05-08&Action=ListUsers", h, 3, "", 0};
  sign(&r, &iam,
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
       "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
       "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
       "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "content-type;host;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_path_encoded_twice(void **state) {
  (void)state;
  gw_sigv4_header h[] = {{"host", "bedrock-runtime.us-east-1.amazonaws.com"},
                         {"x-amz-date", "20150830T123600Z"},
                         {"content-type", "  application/json  "}};
  gw_sigv4_request r = {
      "POST", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", NULL, h, 3, "{}", 2};
  gw_buf out, canon;
  gw_buf_init(&out, 4096);
  gw_buf_init(&canon, 4096);
  assert_int_equal(gw_sigv4_authorization(&r, &suite, "20150830T123600Z", &out, &canon), GW_OK);
  assert_non_null(
      strstr(canon.data, "\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n"));
  assert_non_null(strstr(canon.data, "content-type:application/json\n"));
  gw_buf_release(&out);
  gw_buf_release(&canon);
  assert_int_equal(gw_sigv4_authorization(&r, &suite, "2015-08-30", &out, NULL), GW_ERR_INVALID);

  char d[17];
  gw_sigv4_amz_date(1440938160, d);
  assert_string_equal(d, "20150830T123600Z");
}

static int workload(void *arg) {
  (void)arg;
  gw_sigv4_header h[] = {{"Host", "h"}, {"X-Amz-Date", "20150830T123600Z"}};
  gw_sigv4_request r = {"GET", "/a b", "b=2&a=1", h, 2, "x", 1};
  gw_buf out;
  gw_buf_init(&out, 4096);
  int rc = gw_sigv4_authorization(&r, &suite, "20150830T123600Z", &out, NULL);
  gw_buf_release(&out);
  return rc == GW_OK ? 0 : 1;
}

static void test_failmalloc(void **state) {
  (void)state;
  assert_true(gw_test_failmalloc_sweep(workload, NULL) > 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_vanilla),    cmocka_unit_test(test_post_vanilla),
      cmocka_unit_test(test_iam_list_users), cmocka_unit_test(test_path_encoded_twice),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

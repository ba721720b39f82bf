/* The Azure provider's deployment URLs and its backend's auth header. */
#include "support.h"

#include <string.h>

#include "core/alloc.h"
#include "pipeline/provider_azure.h"

static void test_url_and_auth(void **state) {
  (void)state;
  gw_backend_conf bc = {.name = "az",
                        .target = "https://r.openai.azure.com//",
                        .api_key = "k1",
                        .api_version = "2024-10-21"};
  gw_azure_backend *b = gw_azure_backend_new(&bc);
  assert_non_null(b);
  assert_string_equal(b->auth_header, "api-key: k1");
  char *u = gw_azure_url(b, "gpt 4o/x", "chat/completions");
  assert_string_equal(u, "https://r.openai.azure.com/openai/deployments/gpt%204o%2Fx/"
                         "chat/completions?api-version=2024-10-21");
  gw_free(u);
  gw_azure_backend_free(b);

  bc.api_key = "Bearer tok";
  bc.api_version = NULL;
  b = gw_azure_backend_new(&bc);
  assert_string_equal(b->auth_header, "Authorization: Bearer tok");
  u = gw_azure_url(b, "d", "embeddings");
  assert_string_equal(u, "https://r.openai.azure.com/openai/deployments/d/embeddings"
                         "?api-version=" GW_AZURE_DEFAULT_API_VERSION);
  gw_free(u);
  gw_azure_backend_free(b);
}

static int backend_workload(void *arg) {
  (void)arg;
  gw_backend_conf bc = {.name = "az", .target = "https://x", .api_key = "k"};
  gw_azure_backend *b = gw_azure_backend_new(&bc);
  if (!b)
    return 1;
  gw_azure_backend_free(b);
  return 0;
}

static void test_backend_failmalloc(void **state) {
  (void)state;
  assert_true(gw_test_failmalloc_sweep(backend_workload, NULL) >= 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_and_auth),
      cmocka_unit_test(test_backend_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

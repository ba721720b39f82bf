/* ai-gateway entry point (placeholder until the engine lands). */
#include <stdio.h>
int main(void) { return 0; }

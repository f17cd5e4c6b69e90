/* Capped buffers: growth, compaction of consumed bytes, and the hard cap that every
 * network-filled buffer relies on. */
#include "core/buf.h"
#include "t.h"

static void test_append_and_consume(void)
{
    cu_buf_t b;
    cu_buf_init(&b, 8, 64);
    CHECK(cu_buf_unread(&b) == 0);
    CHECK(cu_buf_append(&b, "hello", 5) == CU_OK);
    CHECK(cu_buf_unread(&b) == 5 && memcmp(cu_buf_head(&b), "hello", 5) == 0);
    cu_buf_consume(&b, 2);
    CHECK(cu_buf_unread(&b) == 3 && memcmp(cu_buf_head(&b), "llo", 3) == 0);
    /* consuming everything rewinds to the start: the space is reusable without a move */
    cu_buf_consume(&b, 3);
    CHECK(b.pos == 0 && b.len == 0 && cu_buf_unread(&b) == 0);
    cu_buf_free(&b);
}

static void test_growth_up_to_the_cap(void)
{
    cu_buf_t b;
    cu_buf_init(&b, 4, 100);
    char block[10];
    memset(block, 'x', sizeof(block));
    for (int i = 0; i < 10; i++)
        CHECK(cu_buf_append(&b, block, sizeof(block)) == CU_OK);
    CHECK(cu_buf_unread(&b) == 100 && b.cap == 100);
    /* one byte past the cap fails, and the contents are untouched */
    CHECK(cu_buf_append(&b, "y", 1) == CU_ERROR);
    CHECK(cu_buf_unread(&b) == 100 && b.cap == 100);
    CHECK(cu_buf_reserve(&b, 1) == CU_ERROR);
    cu_buf_free(&b);
}

static void test_compaction_makes_room(void)
{
    cu_buf_t b;
    cu_buf_init(&b, 16, 16);
    CHECK(cu_buf_append(&b, "0123456789abcdef", 16) == CU_OK);
    CHECK(cu_buf_append(&b, "!", 1) == CU_ERROR); /* full, nothing consumed */
    cu_buf_consume(&b, 10);
    /* the 6 unread bytes move to the front; 10 free bytes appear within the same cap */
    CHECK(cu_buf_reserve(&b, 10) == CU_OK);
    CHECK(b.pos == 0 && b.cap == 16 && memcmp(cu_buf_head(&b), "abcdef", 6) == 0);
    CHECK(cu_buf_append(&b, "ghijklmnop", 10) == CU_OK);
    CHECK(cu_buf_unread(&b) == 16 && memcmp(cu_buf_head(&b), "abcdefghijklmnop", 16) == 0);
    CHECK(cu_buf_reserve(&b, 1) == CU_ERROR);
    cu_buf_free(&b);
}

static void test_lazy_and_small_max(void)
{
    cu_buf_t b;
    /* no initial allocation: the head of an empty buffer is NULL, growth starts on demand */
    cu_buf_init(&b, 0, 4096);
    CHECK(b.data == NULL && cu_buf_head(&b) == NULL && cu_buf_unread(&b) == 0);
    CHECK(cu_buf_append(&b, "abc", 3) == CU_OK);
    CHECK(b.cap >= 3 && b.cap <= 4096 && memcmp(cu_buf_head(&b), "abc", 3) == 0);
    cu_buf_free(&b);
    CHECK(b.cap == 0 && b.len == 0);

    /* a max below the initial size is raised to it, never below what was allocated */
    cu_buf_init(&b, 32, 8);
    CHECK(b.max == 32);
    char big[32] = {0};
    CHECK(cu_buf_append(&b, big, 32) == CU_OK && cu_buf_append(&b, big, 1) == CU_ERROR);
    cu_buf_free(&b);

    /* growth stops exactly at max even when doubling would pass it */
    cu_buf_init(&b, 1000, 1500);
    char k[1200] = {0};
    CHECK(cu_buf_append(&b, k, sizeof(k)) == CU_OK && b.cap == 1500);
    cu_buf_free(&b);
}

int main(void)
{
    test_append_and_consume();
    test_growth_up_to_the_cap();
    test_compaction_makes_room();
    test_lazy_and_small_max();
    return t_done("test_buf");
}

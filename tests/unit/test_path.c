/* path: parsing mount paths, the role of names, and names <-> key values
 * through the key codec. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "fs/path.h"

static void test_parse(void **state)
{
	struct path p;

	(void)state;
	assert_int_equal(path_parse("/", &p), 0);
	assert_int_equal(p.kind, PATH_ROOT);
	assert_int_equal(path_parse("/tables", &p), 0);
	assert_int_equal(p.kind, PATH_TABLES);
	assert_int_equal(path_parse("/tables/users", &p), 0);
	assert_int_equal(p.kind, PATH_TABLE);
	assert_string_equal(p.table, "users");
	assert_int_equal(path_parse("/tables/users/a.json", &p), 0);
	assert_int_equal(p.kind, PATH_CHILD);
	assert_string_equal(p.name, "a.json");
	assert_int_equal(path_parse("/tables/orders/c1/o1.json", &p), 0);
	assert_int_equal(p.kind, PATH_GRANDCHILD);
	assert_string_equal(p.table, "orders");
	assert_string_equal(p.dir, "c1");
	assert_string_equal(p.name, "o1.json");

	assert_int_equal(path_parse("/apis", &p), -ENOENT);
	assert_int_equal(path_parse("/functions", &p), -ENOENT);
	assert_int_equal(path_parse("/tablesx", &p), -ENOENT);
	assert_int_equal(path_parse("/tables/a/b/c/d", &p), -ENOENT);
	assert_int_equal(path_parse("relative", &p), -ENOENT);
	assert_int_equal(path_parse(NULL, &p), -ENOENT);
}

static void test_long_component(void **state)
{
	char path[600];
	struct path p;

	(void)state;
	strcpy(path, "/tables/t/");
	memset(path + 10, 'x', 256);
	path[266] = '\0';
	assert_int_equal(path_parse(path, &p), -ENAMETOOLONG);
	path[265] = '\0';
	assert_int_equal(path_parse(path, &p), 0);
}

static void test_roles(void **state)
{
	struct path p;

	(void)state;
	/* a table without sort key: items and scratch files */
	path_parse("/tables/t/a.json", &p);
	assert_int_equal(path_role(&p, 0), PATH_ROLE_ITEM);
	path_parse("/tables/t/.a.json.swp", &p);
	assert_int_equal(path_role(&p, 0), PATH_ROLE_SCRATCH);
	path_parse("/tables/t/a.json~", &p);
	assert_int_equal(path_role(&p, 0), PATH_ROLE_SCRATCH);
	path_parse("/tables/t/4913", &p);
	assert_int_equal(path_role(&p, 0), PATH_ROLE_SCRATCH);
	path_parse("/tables/t/.json", &p);
	assert_int_equal(path_role(&p, 0), PATH_ROLE_SCRATCH);
	path_parse("/tables/t/p/a.json", &p);
	assert_int_equal(path_role(&p, 0), -ENOENT);
	/* a table with one: partitions, then items */
	path_parse("/tables/t/p", &p);
	assert_int_equal(path_role(&p, 1), PATH_ROLE_PART);
	path_parse("/tables/t/.p", &p);
	assert_int_equal(path_role(&p, 1), PATH_ROLE_SCRATCH);
	path_parse("/tables/t/p/s.json", &p);
	assert_int_equal(path_role(&p, 1), PATH_ROLE_ITEM);
	path_parse("/tables/t/p/#s.json#", &p);
	assert_int_equal(path_role(&p, 1), PATH_ROLE_SCRATCH);
}

static void test_names_and_keys(void **state)
{
	struct keyname_decoded d;
	struct cache_schema s;
	struct dbuf name;
	json_t *v, *k, *sv;

	(void)state;
	dbuf_init(&name, 4096);
	v = json_pack("{s:s}", "S", "a/b%c");
	assert_int_equal(path_encode(v, 0, 'S', &name), 0);
	assert_string_equal(dbuf_str(&name), "a%2Fb%25c.json");
	assert_int_equal(path_decode(dbuf_str(&name), 0, 'S', &d), 0);
	assert_false(d.partial);
	assert_true(json_equal(d.value, v));
	keyname_decoded_free(&d);
	assert_int_equal(path_matches(v, 0, 'S', "a%2Fb%25c.json"), 1);
	assert_int_equal(path_matches(v, 0, 'S', "a%2Fb%25d.json"), 0);
	json_decref(v);

	dbuf_reset(&name);
	v = json_pack("{s:s}", "S", ".hidden");
	assert_int_equal(path_encode(v, 1, 'S', &name), 0);
	assert_string_equal(dbuf_str(&name), "%2Ehidden");
	json_decref(v);
	/* dot-names and bad numbers are no keys */
	assert_int_equal(path_decode(".x", 1, 'S', &d), -EINVAL);
	keyname_decoded_free(&d);
	assert_int_equal(path_decode("1.50.json", 0, 'N', &d), -EINVAL);
	keyname_decoded_free(&d);
	assert_int_equal(path_decode("12.5.json", 0, 'N', &d), 0);
	assert_string_equal(json_string_value(json_object_get(d.value, "N")),
			    "12.5");
	keyname_decoded_free(&d);

	memset(&s, 0, sizeof(s));
	strcpy(s.pk.name, "customer");
	s.pk.type = 'S';
	strcpy(s.sk.name, "order_id");
	s.sk.type = 'N';
	s.has_sk = 1;
	v = json_pack("{s:s}", "S", "c1");
	sv = json_pack("{s:s}", "N", "7");
	k = path_key_new(&s, v, NULL);
	assert_null(k); /* a sort key is needed */
	k = path_key_new(&s, v, sv);
	assert_non_null(k);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(k, "order_id"), "N")), "7");
	json_decref(k);
	json_decref(v);
	json_decref(sv);
	dbuf_free(&name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_long_component),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_names_and_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

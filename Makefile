# coupon: build with PGXS.
#
#   make && sudo make install     the extension and the coupon-stress client
#   make installcheck             pg_regress, isolation and TAP tests against
#                                 a running server that preloads coupon
#
# The README's test command (.ci/test) runs everything, servers included.

EXTENSION = coupon
EXTVERSION = 1.1

MODULE_big = coupon
OBJS = $(patsubst %.c,%.o,$(wildcard extension/*.c))
# The script of the current version is that of 1.0 followed by the
# upgrades, exactly what ALTER EXTENSION UPDATE runs.
DATA = extension/coupon--1.0.sql extension/coupon--1.0--1.1.sql
DATA_built = extension/coupon--$(EXTVERSION).sql
PGFILEDESC = "coupon - exact, crash-safe coupon claims"

REGRESS = coupon_pools coupon_claims coupon_errors coupon_occ coupon_resize \
	coupon_parallel coupon_eviction coupon_triggers coupon_lifecycle
REGRESS_OPTS = --load-extension=coupon
ISOLATION = claim_last_coupon claim_abort_wakes_waiter claim_savepoint \
	claim_same_customer release_races_claim occ_stale_write \
	claim_prepare_refused claim_limit_recreated admin_not_blocked \
	hold_races_expiry hold_expiry_hint request_id_sessions cart_opposite_order
ISOLATION_OPTS = --load-extension=coupon
TAP_TESTS = 1

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

extension/coupon--$(EXTVERSION).sql: extension/coupon--1.0.sql extension/coupon--1.0--1.1.sql
	cat $^ > $@

# The stress client has its own Makefile (PGXS builds one library here).
all: client
client:
	$(MAKE) -C client
install: install-client
install-client: client
	$(MAKE) -C client install
clean: clean-client
clean-client:
	$(MAKE) -C client clean

.PHONY: client install-client clean-client

# coupon: build and test with PGXS, on PostgreSQL 15 to 18.
#
#   make                  the extension, the proxy's extension coupon_proxy
#                         (proxy/) and the coupon-stress client
#   make install          (as root) all three; coupon-stress into
#                         /usr/local/bin
#   make check-floors     the file graphs of the extension and the client,
#                         read from their objects: fails on a cycle
#   make installcheck     (not as root, after make install) regress and
#                         isolation tests, each against a temporary instance
#                         that preloads coupon (sql/preload.conf), then the
#                         TAP tests in t/, which start servers of their own
#
# PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config picks a major.  The
# README's test command (.ci/test) installs the packages, builds, installs
# and runs installcheck as the postgres user, one suite at a time.

EXTENSION = coupon
# The version lives in coupon.control; META.json and debian/changelog
# repeat it (.ci/package checks that they agree).
EXTVERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = coupon
OBJS = $(patsubst %.c,%.o,$(wildcard extension/*.c))
# The script of the current version is that of 1.0 followed by the
# upgrades, exactly what ALTER EXTENSION UPDATE runs.
DATA = extension/coupon--1.0.sql extension/coupon--1.0--1.1.sql \
	extension/coupon--1.1--1.2.sql extension/coupon--1.2--1.3.sql \
	extension/coupon--1.3--1.4.sql \
		extension/coupon--1.4--1.5.sql
DATA_built = extension/coupon--$(EXTVERSION).sql
PGFILEDESC = "coupon - exact, crash-safe coupon claims"

# Add a test by adding its name here (sql/NAME.sql and expected/NAME.out,
# or specs/NAME.spec and expected/NAME.out); TAP tests are every t/*.pl.
REGRESS = coupon_pools coupon_claims coupon_errors coupon_occ coupon_resize \
	coupon_parallel coupon_eviction coupon_triggers coupon_lifecycle \
	coupon_cart_requests coupon_repeats coupon_customer_checks coupon_prune \
	coupon_cart_atomic coupon_drop_many \
	coupon_request_ids
ISOLATION = claim_last_coupon claim_abort_wakes_waiter claim_savepoint \
	claim_same_customer release_races_claim occ_stale_write \
	claim_prepare_refused claim_limit_recreated admin_not_blocked \
	hold_races_expiry hold_expiry_hint request_id_sessions cart_opposite_order \
	cart_request_sessions cart_all_or_nothing request_id_pools drop_unloaded_pool \
	cart_single_request_sessions
TAP_TESTS = 1

# pg_regress and pg_isolation_regress start a temporary instance of the
# installed server, with the settings of sql/preload.conf, as pg_cron and
# pg_wait_sampling do; the directories are the ones "make clean" removes.
TEST_CONF = --temp-config=$(srcdir)/sql/preload.conf
# UTF-8 and the C locale whatever the caller's environment, so that psql
# aligns the expected output's non-ASCII names the same way everywhere.
ENCODING = UTF8
NO_LOCALE = 1
REGRESS_OPTS = --load-extension=coupon --temp-instance=./tmp_check $(TEST_CONF)
ISOLATION_OPTS = --load-extension=coupon --temp-instance=./tmp_check_iso \
	$(TEST_CONF)

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

extension/coupon--$(EXTVERSION).sql: extension/coupon--1.0.sql \
		extension/coupon--1.0--1.1.sql extension/coupon--1.1--1.2.sql \
		extension/coupon--1.2--1.3.sql extension/coupon--1.3--1.4.sql \
		extension/coupon--1.4--1.5.sql
	cat $^ > $@

# The proxy's extension (proxy/, SQL only) has a Makefile of its own, as
# PGXS installs one control file per Makefile.
all: proxy
install: install-proxy
clean: clean-proxy
proxy:
	$(MAKE) -C proxy
install-proxy:
	$(MAKE) -C proxy install
clean-proxy:
	$(MAKE) -C proxy clean

# The stress client has its own Makefile (PGXS builds one library here).
# CLIENT=no leaves it out (debian/rules packages it on its own).
CLIENT ?= yes
ifeq ($(CLIENT),yes)
all: client
install: install-client
clean: clean-client
endif
client:
	$(MAKE) -C client
install-client: client
	$(MAKE) -C client install
clean-client:
	$(MAKE) -C client clean

# A source archive for PGXN, named after the version in coupon.control.
dist:
	git archive --format zip --prefix=$(EXTENSION)-$(EXTVERSION)/ \
		-o $(EXTENSION)-$(EXTVERSION).zip HEAD

# A file calls only files on the floors below it (README, "Code map"):
# .ci/floors reads which file uses which from the objects.
check-floors: $(OBJS)
	sh .ci/floors $(OBJS)
	$(MAKE) -C client check-floors

.PHONY: client install-client clean-client proxy install-proxy clean-proxy \
	dist check-floors

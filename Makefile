# Kiln: `make images` builds the Komodo images, `make test` runs every test.
# Both install what they need on a fresh Debian 12 machine (run as root).

SWIFT        ?= swift
KILN         := .build/release/kiln
STORE        ?= images
APT_PACKAGES := libarchive-dev libssl-dev zlib1g-dev libdeflate-dev libzstd-dev pkg-config bubblewrap \
                docker-registry skopeo umoci podman runc uidmap busybox-static apache2-utils openssl \
                dpkg-dev apt-utils gpg gpgv sqv debian-archive-keyring ca-certificates python3 python3-venv curl git \
                libarchive-tools zstd g++ xz-utils tinyproxy

.PHONY: all deps build release images test fuzz format lint bench demo clean

all: build

# Installs the Debian packages that are missing (only those, so a ready machine pays nothing).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: run as root (or install: $$missing)" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Where iguana's dPoW source archive is looked for (KILN_SOURCES, else ../shared/sources beside the clone);
# without one, kiln fetches the pinned commit with git where there is network.
SOURCES ?= $(or $(KILN_SOURCES),$(wildcard ../shared/sources))
SOURCES_FLAG := $(if $(SOURCES),--sources $(SOURCES))

# A fresh clone has no lock: `kiln lock` first pins what no recipe sha256 pins, printing each digest it trusts
# and the release notes to compare it with (review and commit recipes/kiln.lock), then the build tags.
images: release
	@test -f recipes/kiln.lock || $(KILN) lock recipes --store $(STORE) $(SOURCES_FLAG)
	$(KILN) build recipes --store $(STORE) $(SOURCES_FLAG)

# The transport's deadline tests time async requests against the wall clock. The long integration tests run
# synchronously on the cooperative threads (as many as cores: two here) for minutes at a time, which starves any
# async test beside them past its deadline, so the suites that make HTTP requests in-process (transport, registry,
# Debian repositories, remote inputs) and the one that needs a free pool thread to show `Blocking.run` frees it
# run first on their own, then everything else (whose HTTP goes through the CLI).
ASYNC_TESTS := KilnHTTPTests|KilnRegistryTests|KilnDebianTests|DownloadSinkTests|RemoteInputsTests|BlockingTests
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter '$(ASYNC_TESTS)'
	$(SWIFT) test --skip-build --skip '$(ASYNC_TESTS)'

# The recipe and JSON fuzz targets for longer than `make test` runs them (1,000 cases each there).
# FUZZ_CASES cases from FUZZ_SEED; a failing case is saved under $$TMPDIR/kiln-fuzz-failures/ and named
# with its seed and index, so `make fuzz FUZZ_SEED=… FUZZ_CASES=…` reproduces it.
FUZZ_CASES ?= 100000
FUZZ_SEED  ?= 1263094862
fuzz: deps
	$(SWIFT) build --build-tests
	KILN_FUZZ_CASES=$(FUZZ_CASES) KILN_FUZZ_SEED=$(FUZZ_SEED) $(SWIFT) test --skip-build \
	  --filter 'RecipeFuzzTests|JSONReadersTests/mutatedDocuments'

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests

bench: release
	bench/run

demo: release
	demo/run

clean:
	rm -rf .build

// Everything a service needs: #include <uringrpc/uringrpc.h>
#pragma once

#include "uringrpc/async.h"
#include "uringrpc/bytes.h"
#include "uringrpc/codec.h"
#include "uringrpc/compression.h"
#include "uringrpc/errors.h"
#include "uringrpc/handler.h"
#include "uringrpc/metadata.h"
#include "uringrpc/peer_identity.h"
#include "uringrpc/server.h"
#include "uringrpc/server_context.h"
#include "uringrpc/status.h"
#include "uringrpc/systemd.h"
#include "uringrpc/stream.h"
#include "uringrpc/task.h"
#include "uringrpc/tls.h"

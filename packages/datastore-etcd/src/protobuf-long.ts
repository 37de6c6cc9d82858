// etcd speaks int64 (revisions, lease ids). protobufjs represents them exactly only when it
// has the `long` library; it finds it with `require('long')`, which under some loaders
// (vitest's, with an `import` resolve condition) returns the ES module namespace instead —
// and then lease ids silently lose precision. Hand it the class explicitly, before any call.
import Long from 'long';
import protobuf from 'protobufjs/minimal.js';

if (!protobuf.util.Long) {
  protobuf.util.Long = Long as unknown as typeof protobuf.util.Long;
  protobuf.configure();
}

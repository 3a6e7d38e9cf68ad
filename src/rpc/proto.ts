import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PACKAGE_ROOT } from '../common/package-info.js';

export const PROTO_DIR = join(PACKAGE_ROOT, 'proto');

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const cache = new Map<string, grpc.GrpcObject>();

/** Load a .proto file under proto/ (path relative to it), once per process. */
export function loadProto(relativePath: string): grpc.GrpcObject {
  let pkg = cache.get(relativePath);
  if (!pkg) {
    const definition = protoLoader.loadSync(relativePath, LOADER_OPTIONS);
    pkg = grpc.loadPackageDefinition(definition);
    cache.set(relativePath, pkg);
  }
  return pkg;
}

/** Walk a loaded package to a service client constructor, e.g. "robust.node.v1.NodeService". */
export function serviceClient(pkg: grpc.GrpcObject, fullName: string): grpc.ServiceClientConstructor {
  let cur: unknown = pkg;
  for (const part of fullName.split('.')) cur = (cur as Record<string, unknown>)[part];
  if (typeof cur !== 'function' || !('service' in cur)) throw new Error(`proto service ${fullName} not found`);
  return cur as grpc.ServiceClientConstructor;
}

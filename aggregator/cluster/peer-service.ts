import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/**
 * gRPC descriptors of the peer service (protocol/proto/peer.proto), built from the .proto file with protobufjs
 * reflection. Peer traffic is the exception path (agents send to owners), so a generic codec is fine here; the
 * uplink keeps its hand-written one.
 */

const protoDir = fileURLToPath(new URL('../../../protocol/proto/', import.meta.url));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(protoDir, target);
root.loadSync(['peer.proto'], { keepCase: false });
root.resolveAll();

const conversion = { longs: Number, enums: Number, bytes: Buffer, defaults: true, oneofs: false } as const;

function method(name: string, req: string, res: string, responseStream = false) {
  const Req = root.lookupType(req);
  const Res = root.lookupType(res);
  return {
    path: `/otlp_edge.peer.v1.Peer/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: (v: object) => Buffer.from(Req.encode(Req.fromObject(v)).finish()),
    requestDeserialize: (b: Buffer) => Req.toObject(Req.decode(b), conversion),
    responseSerialize: (v: object) => Buffer.from(Res.encode(Res.fromObject(v)).finish()),
    responseDeserialize: (b: Buffer) => Res.toObject(Res.decode(b), conversion),
  };
}

export const peerServiceDefinition = {
  Forward: method('Forward', 'otlp_edge.peer.v1.ForwardRequest', 'otlp_edge.uplink.v1.UplinkAck'),
  Probe: method('Probe', 'otlp_edge.peer.v1.ProbeRequest', 'otlp_edge.peer.v1.ProbeReply'),
  Handoff: method('Handoff', 'otlp_edge.peer.v1.HandoffRequest', 'otlp_edge.peer.v1.HandoffReply'),
  GetDevice: method('GetDevice', 'otlp_edge.peer.v1.GetDeviceRequest', 'otlp_edge.peer.v1.GetDeviceReply'),
  GetDevices: method('GetDevices', 'otlp_edge.peer.v1.GetDevicesRequest', 'otlp_edge.peer.v1.GetDevicesReply'),
  GetSeries: method('GetSeries', 'otlp_edge.peer.v1.GetSeriesRequest', 'otlp_edge.peer.v1.GetSeriesReply'),
  GetEvents: method('GetEvents', 'otlp_edge.peer.v1.GetEventsRequest', 'otlp_edge.peer.v1.GetEventsReply'),
  DeleteDevice: method('DeleteDevice', 'otlp_edge.peer.v1.DeleteDeviceRequest', 'otlp_edge.peer.v1.DeleteDeviceReply'),
  Subscribe: method('Subscribe', 'otlp_edge.peer.v1.SubscribeRequest', 'otlp_edge.peer.v1.LiveMessages', true),
  GetAlerts: method('GetAlerts', 'otlp_edge.peer.v1.GetAlertsRequest', 'otlp_edge.peer.v1.JsonItems'),
  GetSummary: method('GetSummary', 'otlp_edge.peer.v1.GetSummaryRequest', 'otlp_edge.peer.v1.NodeSummary'),
};

export interface ForwardRequest {
  originAgentId: string;
  originSeq: number;
  part: number;
  fromNode: string;
  signal: number;
  compression: number;
  payload: Uint8Array;
  points: number;
  ringVersion: number;
  deviceSetHash: number;
  /** UplinkBatch.acked_below of the batch this part came from. */
  originAckedBelow: number;
  /** UplinkBatch.buffer_id of that batch. */
  originBufferId: number;
}

export interface ProbeReply {
  nodeId: string;
  ringVersion: number;
  ready: boolean;
  /** The member is leaving the cluster (POST /v1/cluster/leave): it owns nothing from now on. */
  leaving?: boolean;
}

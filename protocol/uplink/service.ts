import {
  decodeFrameAck,
  decodeRingInfo,
  decodeUplinkFrame,
  encodeFrameAck,
  encodeUplinkFrame,
  type FrameAck,
  type UplinkFrame,
  decodeUplinkAck,
  decodeUplinkBatch,
  encodeRingInfo,
  encodeUplinkAck,
  encodeUplinkBatch,
  EMPTY,
  type RingInfo,
  type UplinkAck,
  type UplinkBatch,
} from './messages.js';

/**
 * gRPC method descriptors of the uplink service, in the shape @grpc/grpc-js takes for `ServiceDefinition`
 * (`new Server().addService(def, impl)`, `makeGenericClientConstructor(def)`), with the hand-written codecs as
 * serializers. Plain data: protocol/ stays free of the gRPC runtime, which the agent and aggregator bring.
 */

interface MethodDescriptor<Req, Res> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: Req) => Buffer;
  requestDeserialize: (bytes: Buffer) => Req;
  responseSerialize: (value: Res) => Buffer;
  responseDeserialize: (bytes: Buffer) => Res;
  originalName?: string;
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export const UPLINK_SERVICE = 'otlp_edge.uplink.v1.Uplink';

export const uplinkServiceDefinition = {
  Send: {
    path: `/${UPLINK_SERVICE}/Send`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: UplinkBatch) => asBuffer(encodeUplinkBatch(b)),
    requestDeserialize: (bytes: Buffer) => decodeUplinkBatch(bytes),
    responseSerialize: (a: UplinkAck) => asBuffer(encodeUplinkAck(a)),
    responseDeserialize: (bytes: Buffer) => decodeUplinkAck(bytes),
  } satisfies MethodDescriptor<UplinkBatch, UplinkAck>,
  GetRing: {
    path: `/${UPLINK_SERVICE}/GetRing`,
    requestStream: false,
    responseStream: false,
    requestSerialize: () => asBuffer(EMPTY),
    requestDeserialize: () => ({}),
    responseSerialize: (info: RingInfo) => asBuffer(encodeRingInfo(info)),
    responseDeserialize: (bytes: Buffer) => decodeRingInfo(bytes),
  } satisfies MethodDescriptor<Record<string, never>, RingInfo>,
  Stream: {
    path: `/${UPLINK_SERVICE}/Stream`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (f: UplinkFrame) => asBuffer(encodeUplinkFrame(f)),
    requestDeserialize: (bytes: Buffer) => decodeUplinkFrame(bytes),
    responseSerialize: (a: FrameAck) => asBuffer(encodeFrameAck(a)),
    responseDeserialize: (bytes: Buffer) => decodeFrameAck(bytes),
  } satisfies MethodDescriptor<UplinkFrame, FrameAck>,
};

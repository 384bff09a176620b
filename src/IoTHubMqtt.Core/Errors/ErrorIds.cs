namespace IoTHubMqtt.Core.Errors;

/// <summary>
/// Every ErrorId the module raises, in one place: a constant per ErrorId (the string users match, e.g. in
/// <c>$_.FullyQualifiedErrorId</c>, and never renamed) with its catalog entry beside it: the kind of failure (the cmdlet
/// layer maps it to a PowerShell ErrorCategory), whether it is transient, and what it means. <see cref="ErrorCatalog"/>
/// reads the entries; code throws, catches and retries by these constants, never by string literals.
/// </summary>
/// <remarks>
/// Transient means the same request can succeed later unchanged, and the module's retry loops (the service client, the
/// device client's connect and twin requests, provisioning, the flasher) retry exactly these. A few ErrorIds cover
/// answers of both sorts (a catch-all for unexpected status codes); there the thrower says which one it met.
/// </remarks>
public static class ErrorIds
{
    // Any cmdlet: .NET failures the module has no more specific ErrorId for

    [Error(IoTHubErrorKind.PermissionDenied, "The operating system denied access to a file or device.")]
    public const string AccessDenied = nameof(AccessDenied);

    [Error(IoTHubErrorKind.WriteError, "Reading or writing a file or stream failed.")]
    public const string IOError = nameof(IOError);

    [Error(IoTHubErrorKind.InvalidArgument, "An argument is not valid (a check outside the module's own validation).")]
    public const string InvalidArgument = nameof(InvalidArgument);

    [Error(IoTHubErrorKind.InvalidData, "A value is not in the expected format.")]
    public const string InvalidFormat = nameof(InvalidFormat);

    [Error(IoTHubErrorKind.InvalidOperation, "The operation is not valid in the current state.")]
    public const string InvalidOperation = nameof(InvalidOperation);

    [Error(IoTHubErrorKind.Timeout, "An operation ran out of time.")]
    public const string OperationTimedOut = nameof(OperationTimedOut);

    [Error(IoTHubErrorKind.NotFound, "A file or folder does not exist.")]
    public const string PathNotFound = nameof(PathNotFound);

    [Error(IoTHubErrorKind.NotSpecified, "A failure the module has no specific ErrorId for.")]
    public const string UnexpectedError = nameof(UnexpectedError);

    // Connection strings, keys and SAS tokens

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string has more than one credential: use only one of SharedAccessKey, SharedAccessSignature and x509=true.")]
    public const string ConnectionStringConflictingCredentials = nameof(ConnectionStringConflictingCredentials);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string names a field more than once.")]
    public const string ConnectionStringDuplicateField = nameof(ConnectionStringDuplicateField);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string is empty.")]
    public const string ConnectionStringEmpty = nameof(ConnectionStringEmpty);

    [Error(IoTHubErrorKind.InvalidArgument, "A connection string field has no value.")]
    public const string ConnectionStringEmptyField = nameof(ConnectionStringEmptyField);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string has no SharedAccessKey to sign with.")]
    public const string ConnectionStringHasNoKey = nameof(ConnectionStringHasNoKey);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string's host name is not valid.")]
    public const string ConnectionStringInvalidHostName = nameof(ConnectionStringInvalidHostName);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string field 'x509' must be 'true' or 'false'.")]
    public const string ConnectionStringInvalidX509 = nameof(ConnectionStringInvalidX509);

    [Error(IoTHubErrorKind.InvalidArgument, "A connection string field is not of the form Name=Value.")]
    public const string ConnectionStringMalformedField = nameof(ConnectionStringMalformedField);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string has no credential: it needs SharedAccessKey, SharedAccessSignature or x509=true.")]
    public const string ConnectionStringMissingCredential = nameof(ConnectionStringMissingCredential);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string has neither a DeviceId (device string) nor a SharedAccessKeyName (policy string).")]
    public const string ConnectionStringMissingDeviceId = nameof(ConnectionStringMissingDeviceId);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string has no HostName field.")]
    public const string ConnectionStringMissingHostName = nameof(ConnectionStringMissingHostName);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string names a ModuleId but no DeviceId.")]
    public const string ConnectionStringModuleWithoutDevice = nameof(ConnectionStringModuleWithoutDevice);

    [Error(IoTHubErrorKind.InvalidArgument, "A device or module connection string is needed, not a shared access policy string.")]
    public const string ConnectionStringNotDevice = nameof(ConnectionStringNotDevice);

    [Error(IoTHubErrorKind.InvalidArgument, "The connection string has an unknown field.")]
    public const string ConnectionStringUnknownField = nameof(ConnectionStringUnknownField);

    [Error(IoTHubErrorKind.InvalidArgument, "The SAS token's expiry is not in the future.")]
    public const string ExpiryInPast = nameof(ExpiryInPast);

    [Error(IoTHubErrorKind.InvalidArgument, "A key is empty.")]
    public const string KeyEmpty = nameof(KeyEmpty);

    [Error(IoTHubErrorKind.InvalidArgument, "A key is not 16 to 64 bytes long.")]
    public const string KeyLengthInvalid = nameof(KeyLengthInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The policy (key) name is empty or contains white space.")]
    public const string KeyNameInvalid = nameof(KeyNameInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "A key is not a base64 string.")]
    public const string KeyNotBase64 = nameof(KeyNotBase64);

    [Error(IoTHubErrorKind.InvalidArgument, "The resource URI is empty.")]
    public const string ResourceUriEmpty = nameof(ResourceUriEmpty);

    [Error(IoTHubErrorKind.InvalidArgument, "The resource URI contains white space.")]
    public const string ResourceUriInvalid = nameof(ResourceUriInvalid);

    [Error(IoTHubErrorKind.Unauthorized, "The fixed SAS token has expired.")]
    public const string SasTokenExpired = nameof(SasTokenExpired);

    [Error(IoTHubErrorKind.InvalidArgument, "A shared access signature is malformed.")]
    public const string SasTokenMalformed = nameof(SasTokenMalformed);

    [Error(IoTHubErrorKind.InvalidArgument, "A selfSigned device spec has no primary thumbprint.")]
    public const string ThumbprintMissing = nameof(ThumbprintMissing);

    // Device client: options, connection, telemetry, twins and methods

    [Error(IoTHubErrorKind.InvalidData, "The CA certificate file is not readable PEM.")]
    public const string CaCertificateInvalid = nameof(CaCertificateInvalid);

    [Error(IoTHubErrorKind.NotFound, "The CA certificate file does not exist.")]
    public const string CaCertificateNotFound = nameof(CaCertificateNotFound);

    [Error(IoTHubErrorKind.InvalidArgument, "The client certificate has no private key.")]
    public const string CertificateHasNoPrivateKey = nameof(CertificateHasNoPrivateKey);

    [Error(IoTHubErrorKind.Timeout, "The hub did not answer the connection attempt in time.")]
    public const string ConnectTimedOut = nameof(ConnectTimedOut);

    [Error(IoTHubErrorKind.InvalidOperation, "The device connection is closed.")]
    public const string ConnectionClosed = nameof(ConnectionClosed);

    [Error(IoTHubErrorKind.ConnectionError, "The connection to the hub's host failed (refused, reset or unreachable).", Transient = true)]
    public const string ConnectionFailed = nameof(ConnectionFailed);

    [Error(IoTHubErrorKind.InvalidArgument, "More than one credential was given: a key, a SAS token or a client certificate.")]
    public const string CredentialConflict = nameof(CredentialConflict);

    [Error(IoTHubErrorKind.InvalidArgument, "No credential was given: a key, a SAS token or a client certificate is needed.")]
    public const string CredentialMissing = nameof(CredentialMissing);

    [Error(IoTHubErrorKind.Timeout, "Fewer desired-property changes arrived than asked for within the timeout.")]
    public const string DesiredPropertyWaitTimedOut = nameof(DesiredPropertyWaitTimedOut);

    [Error(IoTHubErrorKind.InvalidArgument, "A device id is not valid (1 to 128 ASCII letters, digits or - . + % _ # * ? ! ( ) , : = @ $ ').")]
    public const string InvalidDeviceId = nameof(InvalidDeviceId);

    [Error(IoTHubErrorKind.InvalidArgument, "The host name is not valid.")]
    public const string InvalidHostName = nameof(InvalidHostName);

    [Error(IoTHubErrorKind.InvalidArgument, "The in-flight window must be between 1 and 65535.")]
    public const string InvalidInFlightWindow = nameof(InvalidInFlightWindow);

    [Error(IoTHubErrorKind.InvalidArgument, "A module id is not valid.")]
    public const string InvalidModuleId = nameof(InvalidModuleId);

    [Error(IoTHubErrorKind.InvalidArgument, "The renewal fraction must be between 0.1 and 1.")]
    public const string InvalidRenewalFraction = nameof(InvalidRenewalFraction);

    [Error(IoTHubErrorKind.InvalidArgument, "The operation timeout must be positive.")]
    public const string InvalidTimeout = nameof(InvalidTimeout);

    [Error(IoTHubErrorKind.InvalidArgument, "The hub rejected the client id '…'.")]
    public const string IoTHubClientIdRejected = nameof(IoTHubClientIdRejected);

    [Error(IoTHubErrorKind.ConnectionError, "The hub refused the MQTT connection for a reason the module has no specific ErrorId for.")]
    public const string IoTHubConnectRefused = nameof(IoTHubConnectRefused);

    [Error(IoTHubErrorKind.Throttled, "The hub is unavailable or throttling connections (MQTT server busy, unavailable or quota exceeded).", Transient = true)]
    public const string IoTHubUnavailable = nameof(IoTHubUnavailable);

    [Error(IoTHubErrorKind.InvalidArgument, "A parameter is not valid JSON.")]
    public const string JsonInvalid = nameof(JsonInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "NaN and infinity cannot be written as JSON.")]
    public const string JsonInvalidNumber = nameof(JsonInvalidNumber);

    [Error(IoTHubErrorKind.InvalidArgument, "-… must be a hashtable, an object or a JSON object.")]
    public const string JsonNotAnObject = nameof(JsonNotAnObject);

    [Error(IoTHubErrorKind.InvalidArgument, "An object is nested too deeply (or refers to itself) to be written as JSON.")]
    public const string JsonTooDeep = nameof(JsonTooDeep);

    [Error(IoTHubErrorKind.InvalidArgument, "IoT Hub allows a keep-alive of at most 1177 seconds.")]
    public const string KeepAliveTooLong = nameof(KeepAliveTooLong);

    [Error(IoTHubErrorKind.InvalidArgument, "The message body is null.")]
    public const string MessageBodyNull = nameof(MessageBodyNull);

    [Error(IoTHubErrorKind.Timeout, "Fewer method calls arrived than asked for within the timeout.")]
    public const string MethodCallWaitTimedOut = nameof(MethodCallWaitTimedOut);

    [Error(IoTHubErrorKind.ConnectionError, "The answer to a direct method could not be sent.")]
    public const string MethodResponseNotSent = nameof(MethodResponseNotSent);

    [Error(IoTHubErrorKind.InvalidArgument, "A direct method's response is larger than 128 KB.")]
    public const string MethodResponseTooLarge = nameof(MethodResponseTooLarge);

    [Error(IoTHubErrorKind.InvalidOperation, "There is no device connection.")]
    public const string NoConnection = nameof(NoConnection);

    [Error(IoTHubErrorKind.InvalidOperation, "No method is registered on this connection.")]
    public const string NoMethodRegistered = nameof(NoMethodRegistered);

    [Error(IoTHubErrorKind.ConnectionError, "The device is not connected.")]
    public const string NotConnected = nameof(NotConnected);

    [Error(IoTHubErrorKind.InvalidArgument, "A property name is empty.")]
    public const string PropertyNameEmpty = nameof(PropertyNameEmpty);

    [Error(IoTHubErrorKind.InvalidArgument, "An HTTP proxy can only carry the WebSocket transport.")]
    public const string ProxyRequiresWebSocket = nameof(ProxyRequiresWebSocket);

    [Error(IoTHubErrorKind.InvalidArgument, "-TimeToLive is not greater than zero.")]
    public const string TimeToLiveNotPositive = nameof(TimeToLiveNotPositive);

    [Error(IoTHubErrorKind.InvalidArgument, "The time to live goes past the largest date.")]
    public const string TimeToLiveTooLarge = nameof(TimeToLiveTooLarge);

    [Error(IoTHubErrorKind.InvalidArgument, "-TokenTimeToLive is shorter than 10 seconds.")]
    public const string TimeToLiveTooShort = nameof(TimeToLiveTooShort);

    [Error(IoTHubErrorKind.Unauthorized, "The TLS handshake failed: the server's certificate is not trusted or does not match the host name.")]
    public const string TlsAuthenticationFailed = nameof(TlsAuthenticationFailed);

    [Error(IoTHubErrorKind.ProtocolError, "The hub sent a twin that is not valid JSON.")]
    public const string TwinMalformed = nameof(TwinMalformed);

    [Error(IoTHubErrorKind.NotFound, "The hub has no twin for this device (404).")]
    public const string TwinNotFound = nameof(TwinNotFound);

    [Error(IoTHubErrorKind.InvalidArgument, "A reported-properties patch is nested deeper than IoT Hub allows.")]
    public const string TwinPatchTooDeep = nameof(TwinPatchTooDeep);

    [Error(IoTHubErrorKind.InvalidArgument, "A reported-properties patch is larger than 32 KB.")]
    public const string TwinPatchTooLarge = nameof(TwinPatchTooLarge);

    [Error(IoTHubErrorKind.ProtocolError, "The hub failed a twin request with a status the module has no specific ErrorId for (a 5xx answer is transient).")]
    public const string TwinRequestFailed = nameof(TwinRequestFailed);

    [Error(IoTHubErrorKind.InvalidArgument, "The hub rejected a twin request (400).")]
    public const string TwinRequestInvalid = nameof(TwinRequestInvalid);

    [Error(IoTHubErrorKind.Timeout, "The hub did not answer a twin request in time.")]
    public const string TwinRequestTimedOut = nameof(TwinRequestTimedOut);

    // Device provisioning (DPS)

    [Error(IoTHubErrorKind.NotFound, "DPS has no enrollment for the registration id.")]
    public const string EnrollmentNotFound = nameof(EnrollmentNotFound);

    [Error(IoTHubErrorKind.InvalidArgument, "A value is not a DPS ID scope.")]
    public const string InvalidIdScope = nameof(InvalidIdScope);

    [Error(IoTHubErrorKind.InvalidArgument, "A registration id is not valid (lowercase letters, digits, - . _ :).")]
    public const string InvalidRegistrationId = nameof(InvalidRegistrationId);

    [Error(IoTHubErrorKind.ConnectionError, "DPS could not be reached, or refused the connection.")]
    public const string ProvisioningConnectFailed = nameof(ProvisioningConnectFailed);

    [Error(IoTHubErrorKind.ProtocolError, "DPS answered with a status the module has no specific ErrorId for.")]
    public const string ProvisioningFailed = nameof(ProvisioningFailed);

    [Error(IoTHubErrorKind.InvalidArgument, "Pass either the device's symmetric key (individual enrollment) or the group key (group enrollment).")]
    public const string ProvisioningKeyRequired = nameof(ProvisioningKeyRequired);

    [Error(IoTHubErrorKind.InvalidOperation, "DPS did not assign the device to a hub (the enrollment is disabled, or no hub is linked).")]
    public const string ProvisioningNotAssigned = nameof(ProvisioningNotAssigned);

    [Error(IoTHubErrorKind.Timeout, "The registration did not finish within the timeout.")]
    public const string ProvisioningTimedOut = nameof(ProvisioningTimedOut);

    [Error(IoTHubErrorKind.Unauthorized, "DPS refused the key for the ID scope.")]
    public const string ProvisioningUnauthorized = nameof(ProvisioningUnauthorized);

    [Error(IoTHubErrorKind.InvalidArgument, "A device input has no registration id.")]
    public const string RegistrationIdMissing = nameof(RegistrationIdMissing);

    // Service: registry, twins, methods, cloud messages

    [Error(IoTHubErrorKind.Timeout, "Fewer feedback records arrived than asked for within the timeout.")]
    public const string CloudMessageFeedbackTimedOut = nameof(CloudMessageFeedbackTimedOut);

    [Error(IoTHubErrorKind.ResourceBusy, "The device already has 50 undelivered cloud-to-device messages.")]
    public const string CloudMessageQueueFull = nameof(CloudMessageQueueFull);

    [Error(IoTHubErrorKind.InvalidData, "The CSV is empty.")]
    public const string CsvEmpty = nameof(CsvEmpty);

    [Error(IoTHubErrorKind.InvalidData, "The CSV has no DeviceId (or Id, SerialNumber) column.")]
    public const string CsvNoDeviceIdColumn = nameof(CsvNoDeviceIdColumn);

    [Error(IoTHubErrorKind.InvalidData, "A CSV line has a different number of fields from the header.")]
    public const string CsvRowMalformed = nameof(CsvRowMalformed);

    [Error(IoTHubErrorKind.AlreadyExists, "A device with this id already exists (409).")]
    public const string DeviceAlreadyExists = nameof(DeviceAlreadyExists);

    [Error(IoTHubErrorKind.InvalidArgument, "A bulk registry call names the same device more than once.")]
    public const string DeviceDefinedMultipleTimes = nameof(DeviceDefinedMultipleTimes);

    [Error(IoTHubErrorKind.InvalidArgument, "A device input has no DeviceId.")]
    public const string DeviceIdMissing = nameof(DeviceIdMissing);

    [Error(IoTHubErrorKind.InvalidData, "A line of a device file is not a device.")]
    public const string DeviceLineInvalid = nameof(DeviceLineInvalid);

    [Error(IoTHubErrorKind.NotFound, "The hub has no device with this id.")]
    public const string DeviceNotFound = nameof(DeviceNotFound);

    [Error(IoTHubErrorKind.ResourceUnavailable, "The device is not connected, or not subscribed to direct methods.")]
    public const string DeviceNotOnline = nameof(DeviceNotOnline);

    [Error(IoTHubErrorKind.InvalidArgument, "The chosen import mode needs the device's ETag.")]
    public const string ETagMissing = nameof(ETagMissing);

    [Error(IoTHubErrorKind.InvalidData, "A line of the export file is not a device.")]
    public const string ExportFileInvalid = nameof(ExportFileInvalid);

    [Error(IoTHubErrorKind.InvalidOperation, "The job ended failed or cancelled; the message gives the hub's failure reason.")]
    public const string ExportJobFailed = nameof(ExportJobFailed);

    [Error(IoTHubErrorKind.InvalidOperation, "The job ended failed or cancelled; the message gives the hub's failure reason.")]
    public const string ImportJobFailed = nameof(ImportJobFailed);

    [Error(IoTHubErrorKind.InvalidArgument, "A device spec's authentication type is not 'sas' or 'selfSigned'.")]
    public const string InvalidAuthenticationType = nameof(InvalidAuthenticationType);

    [Error(IoTHubErrorKind.InvalidArgument, "A device spec's status is not 'enabled' or 'disabled'.")]
    public const string InvalidDeviceStatus = nameof(InvalidDeviceStatus);

    [Error(IoTHubErrorKind.InvalidArgument, "A method name is not valid.")]
    public const string InvalidMethodName = nameof(InvalidMethodName);

    [Error(IoTHubErrorKind.InvalidArgument, "A message property name cannot be sent.")]
    public const string InvalidPropertyName = nameof(InvalidPropertyName);

    [Error(IoTHubErrorKind.InvalidArgument, "A device spec's tags are not a JSON object or a hashtable.")]
    public const string InvalidTags = nameof(InvalidTags);

    [Error(IoTHubErrorKind.InvalidArgument, "The hub rejected a service request as malformed (400).")]
    public const string IoTHubBadRequest = nameof(IoTHubBadRequest);

    [Error(IoTHubErrorKind.ConnectionError, "The hub's service endpoint could not be reached, or the connection dropped.", Transient = true)]
    public const string IoTHubConnectionFailed = nameof(IoTHubConnectionFailed);

    [Error(IoTHubErrorKind.PermissionDenied, "The policy lacks the permission, or the hub's quota is used up (403).")]
    public const string IoTHubForbidden = nameof(IoTHubForbidden);

    [Error(IoTHubErrorKind.ProtocolError, "The hub's answer is not the JSON expected.")]
    public const string IoTHubInvalidResponse = nameof(IoTHubInvalidResponse);

    [Error(IoTHubErrorKind.ResourceUnavailable, "The hub holds as many devices as its tier allows.")]
    public const string IoTHubQuotaExceeded = nameof(IoTHubQuotaExceeded);

    [Error(IoTHubErrorKind.ProtocolError, "The hub answered a service request with a status the module has no specific ErrorId for (a 5xx answer is transient).")]
    public const string IoTHubRequestFailed = nameof(IoTHubRequestFailed);

    [Error(IoTHubErrorKind.Timeout, "The hub did not answer a service request in time.", Transient = true)]
    public const string IoTHubRequestTimedOut = nameof(IoTHubRequestTimedOut);

    [Error(IoTHubErrorKind.NotFound, "The hub has no such resource (404): a wrong host name, or an operation this hub does not offer.")]
    public const string IoTHubResourceNotFound = nameof(IoTHubResourceNotFound);

    [Error(IoTHubErrorKind.Throttled, "The hub throttled requests (429, or a busy AMQP link) for longer than the module waits.", Transient = true)]
    public const string IoTHubThrottled = nameof(IoTHubThrottled);

    [Error(IoTHubErrorKind.Unauthorized, "The hub refused the credentials (a wrong or regenerated key, a policy without the permission, clock skew).")]
    public const string IoTHubUnauthorized = nameof(IoTHubUnauthorized);

    [Error(IoTHubErrorKind.Timeout, "The device did not answer a direct method in time (504); a 504 on another request is transient.")]
    public const string MethodTimedOut = nameof(MethodTimedOut);

    [Error(IoTHubErrorKind.InvalidOperation, "There is no service connection.")]
    public const string NoServiceConnection = nameof(NoServiceConnection);

    [Error(IoTHubErrorKind.InvalidOperation, "The object changed since its ETag was read (412).")]
    public const string PreconditionFailed = nameof(PreconditionFailed);

    [Error(IoTHubErrorKind.InvalidOperation, "The hub failed a registry operation for one device, with a code the module has no specific ErrorId for.")]
    public const string RegistryOperationFailed = nameof(RegistryOperationFailed);

    [Error(IoTHubErrorKind.InvalidArgument, "Pass either -Connection or -ConnectionString, not both.")]
    public const string ServiceConnectionConflict = nameof(ServiceConnectionConflict);

    [Error(IoTHubErrorKind.InvalidArgument, "The service API needs a shared access policy connection string.")]
    public const string ServiceConnectionStringRequired = nameof(ServiceConnectionStringRequired);

    [Error(IoTHubErrorKind.ProtocolError, "The hub redirected telemetry reading to an address that is not an Event Hub's.")]
    public const string TelemetryRedirectInvalid = nameof(TelemetryRedirectInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "A bulk registry call carries more devices than the hub takes.")]
    public const string TooManyDevices = nameof(TooManyDevices);

    // Service: telemetry, storage and checkpoints

    [Error(IoTHubErrorKind.NotImplemented, "The emulator runs without the AMQP endpoint that C2D messages, feedback and telemetry need.")]
    public const string AmqpNotAvailable = nameof(AmqpNotAvailable);

    [Error(IoTHubErrorKind.InvalidArgument, "-StorageConnectionString needs -Checkpoint with the container's name.")]
    public const string CheckpointContainerMissing = nameof(CheckpointContainerMissing);

    [Error(IoTHubErrorKind.NotFound, "The checkpoint blob container does not exist.")]
    public const string CheckpointContainerNotFound = nameof(CheckpointContainerNotFound);

    [Error(IoTHubErrorKind.InvalidArgument, "The checkpoint file is not one this module wrote.")]
    public const string CheckpointFileInvalid = nameof(CheckpointFileInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The checkpoint file cannot be written.")]
    public const string CheckpointFileNotWritable = nameof(CheckpointFileNotWritable);

    [Error(IoTHubErrorKind.ConnectionError, "The checkpoint store answered with an error.")]
    public const string CheckpointStoreFailed = nameof(CheckpointStoreFailed);

    [Error(IoTHubErrorKind.Unauthorized, "The checkpoint store refused the request.")]
    public const string CheckpointStoreUnauthorized = nameof(CheckpointStoreUnauthorized);

    [Error(IoTHubErrorKind.InvalidArgument, "Reading telemetry needs the policy's key.")]
    public const string EventHubKeyRequired = nameof(EventHubKeyRequired);

    [Error(IoTHubErrorKind.InvalidArgument, "IoT Hub accepts telemetry at QoS 0 or 1 only (QoS 2 closes the connection).")]
    public const string InvalidQualityOfService = nameof(InvalidQualityOfService);

    [Error(IoTHubErrorKind.InvalidArgument, "-LoadBalancingInterval must be longer than zero.")]
    public const string LoadBalancingIntervalInvalid = nameof(LoadBalancingIntervalInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The message is larger than the hub accepts.")]
    public const string MessageTooLarge = nameof(MessageTooLarge);

    [Error(IoTHubErrorKind.InvalidArgument, "Pass -StorageConnectionString or -ContainerUri, not both.")]
    public const string StorageConflict = nameof(StorageConflict);

    [Error(IoTHubErrorKind.InvalidArgument, "The storage connection string is not valid.")]
    public const string StorageConnectionStringInvalid = nameof(StorageConnectionStringInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The storage connection string has no account key to make a SAS with.")]
    public const string StorageKeyMissing = nameof(StorageKeyMissing);

    [Error(IoTHubErrorKind.InvalidArgument, "Name the blob container for the device files with -StorageConnectionString (and -Container), or with -ContainerUri.")]
    public const string StorageMissing = nameof(StorageMissing);

    [Error(IoTHubErrorKind.NotFound, "The account, container or blob does not exist.")]
    public const string StorageNotFound = nameof(StorageNotFound);

    [Error(IoTHubErrorKind.ProtocolError, "The storage service answered with another error.")]
    public const string StorageRequestFailed = nameof(StorageRequestFailed);

    [Error(IoTHubErrorKind.InvalidArgument, "The container URI carries no SAS.")]
    public const string StorageSasMissing = nameof(StorageSasMissing);

    [Error(IoTHubErrorKind.Unauthorized, "The storage service refused the request (wrong key, SAS without the permission, expired SAS).")]
    public const string StorageUnauthorized = nameof(StorageUnauthorized);

    [Error(IoTHubErrorKind.ConnectionError, "The storage service could not be reached.")]
    public const string StorageUnreachable = nameof(StorageUnreachable);

    [Error(IoTHubErrorKind.InvalidArgument, "-ContainerUri is not an absolute http(s) URI.")]
    public const string StorageUriInvalid = nameof(StorageUriInvalid);

    [Error(IoTHubErrorKind.ConnectionError, "A telemetry message was not acknowledged after its retries.")]
    public const string TelemetryNotAcknowledged = nameof(TelemetryNotAcknowledged);

    [Error(IoTHubErrorKind.ProtocolError, "The endpoint did not redirect to its Event Hub-compatible endpoint.")]
    public const string TelemetryRedirectMissing = nameof(TelemetryRedirectMissing);

    [Error(IoTHubErrorKind.ProtocolError, "The hub rejected a telemetry message.")]
    public const string TelemetryRejected = nameof(TelemetryRejected);

    [Error(IoTHubErrorKind.InvalidArgument, "Pass -StartPosition or -StartTime, not both.")]
    public const string TelemetryStartConflict = nameof(TelemetryStartConflict);

    [Error(IoTHubErrorKind.Timeout, "Fewer telemetry messages arrived than asked for within the timeout.")]
    public const string TelemetryWaitTimedOut = nameof(TelemetryWaitTimedOut);

    // nanoFramework packages, apps and device configurations

    [Error(IoTHubErrorKind.WriteError, "The deployment image file could not be written.")]
    public const string DeploymentImageWriteFailed = nameof(DeploymentImageWriteFailed);

    [Error(IoTHubErrorKind.NotFound, "The partition table has no nanoFramework deployment partition (data, subtype 0x84).")]
    public const string DeploymentPartitionNotFound = nameof(DeploymentPartitionNotFound);

    [Error(IoTHubErrorKind.InvalidData, "The data does not start with the 'IHMC' configuration marker.")]
    public const string DeviceConfigurationBadMagic = nameof(DeviceConfigurationBadMagic);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration has both a connection string and DPS settings.")]
    public const string DeviceConfigurationBothCredentials = nameof(DeviceConfigurationBothCredentials);

    [Error(IoTHubErrorKind.InvalidData, "The configuration is corrupt (CRC-32 mismatch).")]
    public const string DeviceConfigurationCrcMismatch = nameof(DeviceConfigurationCrcMismatch);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration's CA certificate is not PEM text with at least one certificate.")]
    public const string DeviceConfigurationInvalidCaCertificate = nameof(DeviceConfigurationInvalidCaCertificate);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration's DPS ID scope is missing.")]
    public const string DeviceConfigurationInvalidIdScope = nameof(DeviceConfigurationInvalidIdScope);

    [Error(IoTHubErrorKind.InvalidData, "The configuration body is not the expected JSON.")]
    public const string DeviceConfigurationInvalidJson = nameof(DeviceConfigurationInvalidJson);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration's port is not 1 to 65535.")]
    public const string DeviceConfigurationInvalidPort = nameof(DeviceConfigurationInvalidPort);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration's DPS registration id is not valid.")]
    public const string DeviceConfigurationInvalidRegistrationId = nameof(DeviceConfigurationInvalidRegistrationId);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration has no valid Wi-Fi SSID.")]
    public const string DeviceConfigurationInvalidSsid = nameof(DeviceConfigurationInvalidSsid);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration's telemetry interval is out of range.")]
    public const string DeviceConfigurationInvalidTelemetryInterval = nameof(DeviceConfigurationInvalidTelemetryInterval);

    [Error(IoTHubErrorKind.InvalidArgument, "The Wi-Fi password is not empty (open network) or 8 to 64 characters.")]
    public const string DeviceConfigurationInvalidWifiPassword = nameof(DeviceConfigurationInvalidWifiPassword);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration has neither a device connection string nor DPS settings.")]
    public const string DeviceConfigurationNoCredential = nameof(DeviceConfigurationNoCredential);

    [Error(IoTHubErrorKind.InvalidArgument, "The firmware needs a device connection string with SharedAccessKey (no policy, module, X.509 or fixed SAS).")]
    public const string DeviceConfigurationNotDeviceConnectionString = nameof(DeviceConfigurationNotDeviceConnectionString);

    [Error(IoTHubErrorKind.NotFound, "The littlefs partition has no device configuration file.")]
    public const string DeviceConfigurationNotFound = nameof(DeviceConfigurationNotFound);

    [Error(IoTHubErrorKind.InvalidArgument, "The device configuration is larger than the firmware reads.")]
    public const string DeviceConfigurationTooLarge = nameof(DeviceConfigurationTooLarge);

    [Error(IoTHubErrorKind.InvalidData, "The data is shorter than the 16-byte configuration header.")]
    public const string DeviceConfigurationTruncated = nameof(DeviceConfigurationTruncated);

    [Error(IoTHubErrorKind.InvalidData, "The device configuration's format version is not supported.")]
    public const string DeviceConfigurationUnsupportedVersion = nameof(DeviceConfigurationUnsupportedVersion);

    [Error(IoTHubErrorKind.InvalidData, "A file in the firmware package does not match its CRC-32 and length.")]
    public const string FirmwarePackageCorrupt = nameof(FirmwarePackageCorrupt);

    [Error(IoTHubErrorKind.InvalidData, "The firmware package lacks a file it needs.")]
    public const string FirmwarePackageIncomplete = nameof(FirmwarePackageIncomplete);

    [Error(IoTHubErrorKind.InvalidData, "The firmware package is not a folder or a readable zip file.")]
    public const string FirmwarePackageInvalid = nameof(FirmwarePackageInvalid);

    [Error(IoTHubErrorKind.NotFound, "The firmware package does not exist.")]
    public const string FirmwarePackageNotFound = nameof(FirmwarePackageNotFound);

    [Error(IoTHubErrorKind.InvalidData, "A file in the firmware package is larger than any flash.")]
    public const string FirmwarePackageTooLarge = nameof(FirmwarePackageTooLarge);

    [Error(IoTHubErrorKind.InvalidData, "The littlefs partition read from the board is not a valid file system.")]
    public const string LittleFsCorrupt = nameof(LittleFsCorrupt);

    [Error(IoTHubErrorKind.InvalidArgument, "A file name is given twice.")]
    public const string LittleFsDuplicateFileName = nameof(LittleFsDuplicateFileName);

    [Error(IoTHubErrorKind.InvalidArgument, "The littlefs block size is not a multiple of 4 of at least 128 bytes.")]
    public const string LittleFsInvalidBlockSize = nameof(LittleFsInvalidBlockSize);

    [Error(IoTHubErrorKind.InvalidArgument, "A file name is not valid for the littlefs root directory.")]
    public const string LittleFsInvalidFileName = nameof(LittleFsInvalidFileName);

    [Error(IoTHubErrorKind.InvalidArgument, "The littlefs partition size is not a whole number of blocks.")]
    public const string LittleFsInvalidPartitionSize = nameof(LittleFsInvalidPartitionSize);

    [Error(IoTHubErrorKind.InvalidArgument, "The littlefs partition has fewer than 2 blocks.")]
    public const string LittleFsPartitionTooSmall = nameof(LittleFsPartitionTooSmall);

    [Error(IoTHubErrorKind.InvalidArgument, "The root directory entries do not fit one metadata block.")]
    public const string LittleFsTooManyFiles = nameof(LittleFsTooManyFiles);

    [Error(IoTHubErrorKind.NotImplemented, "The littlefs root directory continues in another metadata pair, which this reader does not follow.")]
    public const string LittleFsUnsupported = nameof(LittleFsUnsupported);

    [Error(IoTHubErrorKind.InvalidData, "The deployment image is not nanoFramework assemblies.")]
    public const string NanoFrameworkDeploymentImageInvalid = nameof(NanoFrameworkDeploymentImageInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "An assembly is given twice.")]
    public const string NanoFrameworkDuplicateAssembly = nameof(NanoFrameworkDuplicateAssembly);

    [Error(IoTHubErrorKind.InvalidArgument, "The deployment image is larger than the deployment partition.")]
    public const string NanoFrameworkImageTooLarge = nameof(NanoFrameworkImageTooLarge);

    [Error(IoTHubErrorKind.InvalidArgument, "Give one folder, or .pe files, not both.")]
    public const string NanoFrameworkMixedInput = nameof(NanoFrameworkMixedInput);

    [Error(IoTHubErrorKind.NotFound, "No .pe files were found or given.")]
    public const string NanoFrameworkNoPeFiles = nameof(NanoFrameworkNoPeFiles);

    [Error(IoTHubErrorKind.InvalidArgument, "A file is not a .pe file.")]
    public const string NanoFrameworkNotPeFile = nameof(NanoFrameworkNotPeFile);

    [Error(IoTHubErrorKind.NotFound, "A nanoFramework app path does not exist.")]
    public const string NanoFrameworkPathNotFound = nameof(NanoFrameworkPathNotFound);

    [Error(IoTHubErrorKind.InvalidData, "A .pe file's contents are corrupt (assembly CRC mismatch).")]
    public const string NanoFrameworkPeAssemblyCorrupt = nameof(NanoFrameworkPeAssemblyCorrupt);

    [Error(IoTHubErrorKind.InvalidData, "A file is not a nanoFramework assembly.")]
    public const string NanoFrameworkPeBadMarker = nameof(NanoFrameworkPeBadMarker);

    [Error(IoTHubErrorKind.InvalidData, "A .pe file's header is corrupt.")]
    public const string NanoFrameworkPeHeaderCorrupt = nameof(NanoFrameworkPeHeaderCorrupt);

    [Error(IoTHubErrorKind.InvalidData, "A .pe file has the old NFMRK1 format that current firmware does not load.")]
    public const string NanoFrameworkPeOutdated = nameof(NanoFrameworkPeOutdated);

    [Error(IoTHubErrorKind.InvalidData, "A .pe file's length differs from its header's.")]
    public const string NanoFrameworkPeSizeMismatch = nameof(NanoFrameworkPeSizeMismatch);

    [Error(IoTHubErrorKind.InvalidData, "A .pe file is shorter than an assembly header.")]
    public const string NanoFrameworkPeTruncated = nameof(NanoFrameworkPeTruncated);

    [Error(IoTHubErrorKind.NotFound, "The partition table has no partition for the device configuration (-Configuration).")]
    public const string PartitionNotFound = nameof(PartitionNotFound);

    [Error(IoTHubErrorKind.InvalidData, "The data is not a valid ESP32 partition table.")]
    public const string PartitionTableInvalid = nameof(PartitionTableInvalid);

    // ESP32 boards, images and the simulator

    [Error(IoTHubErrorKind.ConnectionError, "The board stopped answering after a baud rate change.")]
    public const string Esp32BaudRateFailed = nameof(Esp32BaudRateFailed);

    [Error(IoTHubErrorKind.InvalidOperation, "The board is not the chip given with -Chip.")]
    public const string Esp32ChipMismatch = nameof(Esp32ChipMismatch);

    [Error(IoTHubErrorKind.ProtocolError, "The loader returned an error status (ROM/stub code named).", Transient = true)]
    public const string Esp32CommandFailed = nameof(Esp32CommandFailed);

    [Error(IoTHubErrorKind.NotImplemented, "The loader does not support a command.")]
    public const string Esp32CommandNotSupported = nameof(Esp32CommandNotSupported);

    [Error(IoTHubErrorKind.NotFound, "The CA certificate file named in -Configuration does not exist.")]
    public const string Esp32ConfigurationCaNotFound = nameof(Esp32ConfigurationCaNotFound);

    [Error(IoTHubErrorKind.InvalidArgument, "-Configuration takes a hashtable or an object with configuration properties.")]
    public const string Esp32ConfigurationInvalid = nameof(Esp32ConfigurationInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "-Configuration has an unknown key.")]
    public const string Esp32ConfigurationUnknownKey = nameof(Esp32ConfigurationUnknownKey);

    [Error(IoTHubErrorKind.InvalidOperation, "The erase must be confirmed and this PowerShell cannot ask; add -Force (or -Confirm:$false).")]
    public const string Esp32ConfirmationRequired = nameof(Esp32ConfirmationRequired);

    [Error(IoTHubErrorKind.InvalidData, "An image is empty (writing it would only erase).")]
    public const string Esp32EmptyImage = nameof(Esp32EmptyImage);

    [Error(IoTHubErrorKind.InvalidData, "-FlashFrequency is not one the chip has.")]
    public const string Esp32FlashFrequencyNotSupported = nameof(Esp32FlashFrequencyNotSupported);

    [Error(IoTHubErrorKind.InvalidData, "An image's checksum does not match its segments (corrupted or truncated).")]
    public const string Esp32ImageChecksumMismatch = nameof(Esp32ImageChecksumMismatch);

    [Error(IoTHubErrorKind.InvalidData, "An image is built for another chip.")]
    public const string Esp32ImageChipMismatch = nameof(Esp32ImageChipMismatch);

    [Error(IoTHubErrorKind.InvalidData, "A file is not an ESP32 application image.")]
    public const string Esp32ImageInvalid = nameof(Esp32ImageInvalid);

    [Error(IoTHubErrorKind.NotFound, "An image file does not exist.")]
    public const string Esp32ImageNotFound = nameof(Esp32ImageNotFound);

    [Error(IoTHubErrorKind.InvalidData, "A region does not fit the flash or its partition.")]
    public const string Esp32ImageTooLarge = nameof(Esp32ImageTooLarge);

    [Error(IoTHubErrorKind.InvalidArgument, "An image spec is not offset=file or a hashtable.")]
    public const string Esp32InvalidImageSpec = nameof(Esp32InvalidImageSpec);

    [Error(IoTHubErrorKind.InvalidArgument, "A value is not a flash offset.")]
    public const string Esp32InvalidOffset = nameof(Esp32InvalidOffset);

    [Error(IoTHubErrorKind.InvalidArgument, "A port name is not valid.")]
    public const string Esp32InvalidPort = nameof(Esp32InvalidPort);

    [Error(IoTHubErrorKind.WriteError, "The flash does not hold the image after the retries.")]
    public const string Esp32Md5Mismatch = nameof(Esp32Md5Mismatch);

    [Error(IoTHubErrorKind.NotFound, "No serial port with an ESP32 USB bridge (Espressif USB, CP210x, CH340, FTDI) was found.")]
    public const string Esp32NoDeviceFound = nameof(Esp32NoDeviceFound);

    [Error(IoTHubErrorKind.PermissionDenied, "The serial device's permissions do not let the user in.")]
    public const string Esp32PermissionDenied = nameof(Esp32PermissionDenied);

    [Error(IoTHubErrorKind.ResourceBusy, "The port is open in another program (on Linux: opened exclusively, as serial tools do).")]
    public const string Esp32PortBusy = nameof(Esp32PortBusy);

    [Error(IoTHubErrorKind.ConnectionError, "The serial port was closed during the operation.")]
    public const string Esp32PortClosed = nameof(Esp32PortClosed);

    [Error(IoTHubErrorKind.NotFound, "No such serial port, or nothing listening at a socket:// port.")]
    public const string Esp32PortNotFound = nameof(Esp32PortNotFound);

    [Error(IoTHubErrorKind.ProtocolError, "The loader's answer was garbled or out of order.", Transient = true)]
    public const string Esp32ProtocolError = nameof(Esp32ProtocolError);

    [Error(IoTHubErrorKind.InvalidArgument, "-Offset and -Length go together.")]
    public const string Esp32RegionIncomplete = nameof(Esp32RegionIncomplete);

    [Error(IoTHubErrorKind.InvalidArgument, "An erase region's offset or size is not a non-zero multiple of 4 KiB.")]
    public const string Esp32RegionNotAligned = nameof(Esp32RegionNotAligned);

    [Error(IoTHubErrorKind.InvalidData, "Two flash regions overlap.")]
    public const string Esp32RegionsOverlap = nameof(Esp32RegionsOverlap);

    [Error(IoTHubErrorKind.InvalidArgument, "-Chip Auto is not a chip to simulate.")]
    public const string Esp32SimulatorChipRequired = nameof(Esp32SimulatorChipRequired);

    [Error(IoTHubErrorKind.InvalidArgument, "The -DevicePath link cannot be made (the path exists, or its folder is not writable).")]
    public const string Esp32SimulatorDevicePathInvalid = nameof(Esp32SimulatorDevicePathInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "A -Fault hashtable with an unknown key, kind or command.")]
    public const string Esp32SimulatorFaultInvalid = nameof(Esp32SimulatorFaultInvalid);

    [Error(IoTHubErrorKind.NotFound, "No ESP32 simulator started in this session is running.")]
    public const string Esp32SimulatorNotRunning = nameof(Esp32SimulatorNotRunning);

    [Error(IoTHubErrorKind.NotImplemented, "-Pty on a system other than Linux (use the socket:// port instead).")]
    public const string Esp32SimulatorPtyNotSupported = nameof(Esp32SimulatorPtyNotSupported);

    [Error(IoTHubErrorKind.InvalidOperation, "The operation needs the flasher stub.")]
    public const string Esp32StubRequired = nameof(Esp32StubRequired);

    [Error(IoTHubErrorKind.ConnectionError, "No answer from the bootloader.")]
    public const string Esp32SyncFailed = nameof(Esp32SyncFailed);

    [Error(IoTHubErrorKind.ConnectionError, "The board stopped answering during an operation, after retries.")]
    public const string Esp32SyncLost = nameof(Esp32SyncLost);

    [Error(IoTHubErrorKind.Timeout, "The board did not answer a loader command in time.", Transient = true)]
    public const string Esp32Timeout = nameof(Esp32Timeout);

    [Error(IoTHubErrorKind.NotImplemented, "The chip is not one the flasher supports.")]
    public const string Esp32UnknownChip = nameof(Esp32UnknownChip);

    // The emulator

    [Error(IoTHubErrorKind.InvalidData, "The emulator's CA expires too soon to sign server certificates clients would trust.")]
    public const string EmulatorCaExpired = nameof(EmulatorCaExpired);

    [Error(IoTHubErrorKind.InvalidData, "The emulator's CA cannot be used.")]
    public const string EmulatorCaInvalid = nameof(EmulatorCaInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The server certificate file cannot be read as a PFX with its password.")]
    public const string EmulatorCertificateInvalid = nameof(EmulatorCertificateInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The server certificate has no private key.")]
    public const string EmulatorCertificateNoPrivateKey = nameof(EmulatorCertificateNoPrivateKey);

    [Error(IoTHubErrorKind.InvalidData, "The emulator's database is damaged.")]
    public const string EmulatorDataCorrupt = nameof(EmulatorDataCorrupt);

    [Error(IoTHubErrorKind.ResourceBusy, "The emulator's data path is in use by another emulator or program.")]
    public const string EmulatorDataPathInUse = nameof(EmulatorDataPathInUse);

    [Error(IoTHubErrorKind.PermissionDenied, "The emulator cannot write to its data path.")]
    public const string EmulatorDataPathNotWritable = nameof(EmulatorDataPathNotWritable);

    [Error(IoTHubErrorKind.PermissionDenied, "The emulator's database is read-only.")]
    public const string EmulatorDataReadOnly = nameof(EmulatorDataReadOnly);

    [Error(IoTHubErrorKind.InvalidData, "The data path holds a database this emulator cannot use.")]
    public const string EmulatorDataSchemaUnknown = nameof(EmulatorDataSchemaUnknown);

    [Error(IoTHubErrorKind.WriteError, "The emulator could not write its database.")]
    public const string EmulatorDataWriteFailed = nameof(EmulatorDataWriteFailed);

    [Error(IoTHubErrorKind.WriteError, "The -EndpointPath file could not be written (the emulator is stopped again).")]
    public const string EmulatorEndpointFileFailed = nameof(EmulatorEndpointFileFailed);

    [Error(IoTHubErrorKind.InvalidArgument, "The emulator's host name is empty or not a host name.")]
    public const string EmulatorHostNameInvalid = nameof(EmulatorHostNameInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "-ListenAddress is not an IP address.")]
    public const string EmulatorListenAddressInvalid = nameof(EmulatorListenAddressInvalid);

    [Error(IoTHubErrorKind.NotFound, "No IoT Hub emulator started in this session is running.")]
    public const string EmulatorNotRunning = nameof(EmulatorNotRunning);

    [Error(IoTHubErrorKind.InvalidArgument, "The partition count is not 1 to 32.")]
    public const string EmulatorPartitionCountInvalid = nameof(EmulatorPartitionCountInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "Persisting state needs a data path.")]
    public const string EmulatorPersistNeedsDataPath = nameof(EmulatorPersistNeedsDataPath);

    [Error(IoTHubErrorKind.ResourceBusy, "An emulator port is in use.")]
    public const string EmulatorPortInUse = nameof(EmulatorPortInUse);

    [Error(IoTHubErrorKind.InvalidArgument, "A port is not a TCP port.")]
    public const string EmulatorPortInvalid = nameof(EmulatorPortInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The telemetry retention keeps no message.")]
    public const string EmulatorRetentionInvalid = nameof(EmulatorRetentionInvalid);

    [Error(IoTHubErrorKind.InvalidArgument, "The number of units is out of range for the tier.")]
    public const string EmulatorUnitsInvalid = nameof(EmulatorUnitsInvalid);
}
